"""`python -m ioprof` behaves exactly like the `ioprof` console script."""

from ioprof.cli import main

if __name__ == "__main__":
    main()
