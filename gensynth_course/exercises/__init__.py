"""Exercise checkers, one module per chapter. The reference solutions live outside the package, in
the repository's ``teaching/solutions/`` (the tests prove them; ``make assignments`` grades with them)."""
