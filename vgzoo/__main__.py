"""``python -m vgzoo`` (and ``torchrun -m vgzoo``) runs the CLI."""

from vgzoo.cli import main

if __name__ == "__main__":
    main()
