"""Package data: word lists and tables read with importlib.resources."""
