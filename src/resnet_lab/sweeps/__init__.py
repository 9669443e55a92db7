"""Everything a multirun does: job expansion and markers, the parent run and its champion, and the sweepers."""
