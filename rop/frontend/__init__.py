"""Front end of rop: from the user's Python source to a checked ``ast``.

:mod:`rop.frontend.grammar` validates the syntax of a function against the
formal grammar of the accepted subset (``grammar/rop.lark``).
"""
