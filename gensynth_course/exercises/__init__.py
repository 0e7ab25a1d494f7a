"""Exercise checkers, one module per chapter; solutions live beside them and the tests prove them."""
