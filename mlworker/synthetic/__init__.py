"""Mock data generators that write the same real formats the ingest reads (no Django)."""
