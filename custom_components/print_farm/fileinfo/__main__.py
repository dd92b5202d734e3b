"""`python -m custom_components.print_farm.fileinfo FILE...`, or `python .../fileinfo FILE...`.

Run as a module, Python first runs the integration package's `__init__`, which imports nothing from
Home Assistant unless Home Assistant is already loaded, so both forms cost only the reader. Run as
a directory path, this file loads the fileinfo package on its own, under a private name.
"""

import sys

if __package__:
    from .cli import main
else:
    # Run as `python path/to/fileinfo`: sys.path[0] is this folder; drop it so that none of its
    # modules can shadow a standard one, then load the folder as a package of its own.
    import importlib
    import importlib.util
    import os

    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == _here:
        del sys.path[0]
    _spec = importlib.util.spec_from_file_location(
        "_print_farm_fileinfo", os.path.join(_here, "__init__.py"), submodule_search_locations=[_here]
    )
    if _spec is None or _spec.loader is None:
        raise SystemExit("cannot load the fileinfo package")
    _package = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _package
    _spec.loader.exec_module(_package)
    main = importlib.import_module("_print_farm_fileinfo.cli").main

if __name__ == "__main__":
    sys.exit(main())
