"""Run the simulated farm: `python -m simulator --help`."""

from .farm import main

main()
