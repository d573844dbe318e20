"""Running Community Live: the local runner, the demo seed and the demo page."""
