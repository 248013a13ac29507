import pytest

from gpucost.runtime.kafka import consumer_config
from gpucost.runtime.settings import load_processor_settings

pytestmark = pytest.mark.unit

REQUIRED = {"price_per_hour_usd": 3.5, "kafka_bootstrap": "k:9092", "mongodb_uri": "mongodb://m"}


def test_offsets_are_stored_by_the_processor_only_after_its_writes() -> None:
    config = consumer_config("k:9092", "g")
    assert config["enable.auto.offset.store"] is False
    assert "group.instance.id" not in config


def test_an_instance_id_makes_the_membership_static() -> None:
    assert consumer_config("k:9092", "g", instance_id="vm3")["group.instance.id"] == "vm3"


def test_the_instance_id_setting_is_optional_and_never_empty() -> None:
    assert load_processor_settings(**REQUIRED).kafka_group_instance_id is None
    settings = load_processor_settings(**REQUIRED, kafka_group_instance_id="processor-vm3")
    assert settings.kafka_group_instance_id == "processor-vm3"
    with pytest.raises(Exception, match="KAFKA_GROUP_INSTANCE_ID"):
        load_processor_settings(**REQUIRED, kafka_group_instance_id="")
