"""Builds lowbit._C with CMake; everything else is in pyproject.toml."""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        import torch  # the torch we build against is the torch in this interpreter

        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(os.environ.get("LOWBIT_BUILD_DIR", ROOT / "build"))
        build_dir.mkdir(parents=True, exist_ok=True)
        prefix = [torch.utils.cmake_prefix_path]
        config = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            f"-DCMAKE_BUILD_TYPE={os.environ.get('LOWBIT_BUILD_TYPE', 'Release')}",
            f"-DLOWBIT_OUTPUT_DIR={out_dir}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DCMAKE_PREFIX_PATH={';'.join(prefix)}",
            f"-DLOWBIT_TORCH_VERSION={torch.__version__}",
        ]
        if subprocess.call(["ninja", "--version"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0:
            config += ["-G", "Ninja"]
        subprocess.check_call(config)
        jobs = str(os.cpu_count() or 2)
        subprocess.check_call(["cmake", "--build", str(build_dir), "--parallel", jobs])


setup(ext_modules=[CMakeExtension("lowbit._C")], cmdclass={"build_ext": CMakeBuild})
