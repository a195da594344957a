"""Where a frame enters and leaves: plate sequences, movies, frame numbers, edits, and matte files.

- `formats`: the one table of plate file kinds (extension -> reader, contents, default colour).
- `plates`: image sequences and `open_plates`, the one dispatch from a path to its reader.
- `image_reader`, `display_window`, `exr_yca`: decoding one image file into the display window.
- `movie`, `movie_writer`, `ffmpeg`: movies read as plates, and ProRes output, through PyAV.
- `plate_types`: what every reader hands back (`ImageInfo`, `Plate`) and its frame facts.
- `plate_identity`: which shot a plate is (the cache's and the stamps' key).
- `plate_info`/`plate_checks`: `vrmbg info`.
- `frames`, `edits`: frame-range text, sequence patterns, cut lists.
- `mattes`, `exr_writer`, `halfs`: writing mattes (and their stamp) and reading them back;
  `exr_whole`: whether an EXR file is whole (its chunk table against its size).
"""
