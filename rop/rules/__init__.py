"""The R-rule table and the sympy derivation of elementwise derivatives."""
