"""Launch LangSAM Studio: ``python main.py [image-or-folder]`` (sub-commands as ``langsam-studio``)."""

from desktop_app.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
