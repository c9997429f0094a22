"""Execute notebooks with the Python that runs this script (the same kernel choice as nbval's
``--nbval-current-env``), keeping every output.

    python tools/execute.py OUT_DIR NOTEBOOK...     write each executed notebook into OUT_DIR

Used by ``make site`` and ``make slides`` (one execution shared by both) and by the student
edition test. Each notebook runs with its own folder as the working directory, as in
JupyterLab and nbval; widget state is stored so that static HTML can show the widgets.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import ipykernel.kernelspec
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

CURRENT_ENV = "current-env"  # kernel name meaning "this interpreter", whatever kernels are registered
CELL_TIMEOUT = 600  # seconds per cell


class _CurrentEnvSpecs(KernelSpecManager):
    """Kernel specs plus one for the running interpreter (so no registered kernel is needed)."""

    def get_kernel_spec(self, kernel_name):
        if kernel_name == CURRENT_ENV:
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict())
        return super().get_kernel_spec(kernel_name)


def execute(nb: nbformat.NotebookNode, cwd: Path, *, allow_errors: bool = False, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` in place with the current interpreter and return it.

    Args:
        nb: the notebook; its outputs are replaced.
        cwd: the kernel's working directory (the notebook's folder).
        allow_errors: keep going after a failing cell (its error is stored as an output).
        timeout: seconds allowed per cell.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed and ``allow_errors`` is False.
    """
    km = KernelManager(kernel_name=CURRENT_ENV, kernel_spec_manager=_CurrentEnvSpecs())
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        allow_errors=allow_errors,
        store_widget_state=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute()
    finally:  # a kernel handed to NotebookClient is not its to stop: without this, every run leaves one behind
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out_dir = Path(argv[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    # The numbers the notebooks print and assert were made with two torch threads (conftest.py's
    # KERNEL_THREADS); with another count a CPU sum rounds differently and a trained model drifts.
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    for name in argv[1:]:
        path = Path(name)
        start = time.perf_counter()
        nb = execute(nbformat.read(path, as_version=4), path.parent.resolve())
        nbformat.write(nb, out_dir / path.name)
        print(f"executed {path.name} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
