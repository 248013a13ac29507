"""What tokens cost, read back: live from MongoDB (summary, source, tunnel) or
offline from a recorded trace (replay), as tables or one picture (plot)."""
