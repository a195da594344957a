"""Where a frame enters and leaves: plate sequences, movies, frame numbers, edits, and matte files.

- `formats`: the one dispatch from a path to its reader (image sequence or movie).
- `plates`, `exr_yca`, `movie`: reading plates; `plate_info`/`plate_checks`: `vrmbg info`.
- `frames`, `edits`: frame-range text, sequence patterns, cut lists.
- `mattes`, `exr_writer`, `halfs`: writing mattes (and their stamp) and reading them back.
"""
