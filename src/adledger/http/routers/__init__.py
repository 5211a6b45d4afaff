"""One router per resource; `http.app` mounts them all under /v1."""
