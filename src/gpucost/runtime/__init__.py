"""The code that runs inside the containers: producer, processor, GPU sources, cost engine."""
