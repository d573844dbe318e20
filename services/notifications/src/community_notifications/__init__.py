"""Community Live notifications service: Web Push to people who are not connected."""
