"""`flowdet demo`: the whole pipeline on the embedded synthetic default, with a report."""
