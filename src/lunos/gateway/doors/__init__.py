"""Front doors other than Chat Completions: each translates its own wire format at the edge
(request in, answer and stream events out) over the one engine (DESIGN.md, "Front doors")."""
