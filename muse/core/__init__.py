"""The torch-free core every layer may import: configs, errors, atomic files, id constants, metrics."""
