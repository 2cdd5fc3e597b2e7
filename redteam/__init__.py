"""redteam: a security and robustness testbed for sequential recommenders.

Importing this package is cheap: heavy libraries (torch, pandas, transformers) load only
where a component needs them.
"""

__version__ = "0.1.0"
