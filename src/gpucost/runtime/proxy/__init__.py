"""`gpucost-proxy`: an OpenAI-compatible reverse proxy; each request becomes a token event."""
