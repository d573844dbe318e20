"""The demo page (`index.html`) and the small server that serves it."""
