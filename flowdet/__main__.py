"""`python -m flowdet ...` (also what `torchrun -m flowdet train ...` runs)."""
from flowdet.cli import main

main()
