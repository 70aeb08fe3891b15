__version__ = '0 (stub for the GPU benchmark machine: no vector files are read)'
