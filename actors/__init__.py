"""Engine actors: plain engine classes (no Ray import) and the thin Ray wrappers around them."""
