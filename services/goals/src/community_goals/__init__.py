"""Community Live goals service: tracks, revenue goals, instructor reviews and success stories."""
