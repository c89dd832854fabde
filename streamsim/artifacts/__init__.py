"""What a run leaves behind and reads back: the artifact cache, checkpoints, run folders, results
files and diagnostics."""
