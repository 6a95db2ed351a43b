"""`python -m workbench.engine.default_model`: assemble the default GGUF and print its path."""

from .loader import default_model_path

if __name__ == "__main__":
    print(default_model_path())
