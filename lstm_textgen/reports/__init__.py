"""Reports on a run: its training curves (`plot`) and its gates (`inspect`)."""
