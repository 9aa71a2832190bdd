"""A compact, faithful text form of the IR (``ROP_DUMP``, ``rop-compile --emit graph``)."""

from __future__ import annotations

from .nodes import (Append, Assign, Break, Const, Continue, Effect, For, If, Return, SetItem,
                    SliceOp, TupleOp, Var, While)


def fmt_operand(op) -> str:
    if isinstance(op, Var):
        return op.name
    if isinstance(op, Const):
        return "..." if op.value is Ellipsis else repr(op.value)
    if isinstance(op, TupleOp):
        return "(" + ", ".join(fmt_operand(i) for i in op.items) + ("," if len(op.items) == 1 else "") + ")"
    if isinstance(op, SliceOp):
        return ":".join("" if p is None else fmt_operand(p) for p in (op.lo, op.hi, op.step))
    return "?"


def format_function(fn) -> str:
    lines = [f"function {fn.name}({', '.join(fn.params)}):"]
    _block(fn.body, 1, lines)
    return "\n".join(lines)


def _block(stmts, depth, lines):
    pad = "  " * depth
    for st in stmts:
        tag = f"  ; line {st.loc.lineno}"
        if isinstance(st, Assign):
            args = [fmt_operand(a) for a in st.args] + [f"{k}={fmt_operand(a)}" for k, a in st.kwargs]
            rhs = f"{st.prim}({', '.join(args)})"
            lines.append(f"{pad}{st.target} = {rhs}{'   [R]' if st.is_r else ''}{tag}")
        elif isinstance(st, SetItem):
            val = fmt_operand(st.value)
            lines.append(f"{pad}{st.obj}[{fmt_operand(st.index)}] = {val}"
                         f"{'   [R]' if st.is_r else ''}{tag}")
        elif isinstance(st, Append):
            val = fmt_operand(st.value)
            lines.append(f"{pad}{st.obj}.append({val}){'   [R]' if st.is_r else ''}{tag}")
        elif isinstance(st, For):
            lines.append(f"{pad}for {st.var} in range({fmt_operand(st.start)}, "
                         f"{fmt_operand(st.stop)}, {fmt_operand(st.step)}):{tag}")
            _block(st.body, depth + 1, lines)
        elif isinstance(st, While):
            lines.append(f"{pad}while:{tag}")
            _block(st.cond, depth + 2, lines)
            lines.append(f"{pad}  test {fmt_operand(st.test)}")
            _block(st.body, depth + 1, lines)
        elif isinstance(st, If):
            lines.append(f"{pad}if {fmt_operand(st.test)}:{tag}")
            _block(st.body, depth + 1, lines)
            if st.orelse:
                lines.append(f"{pad}else:")
                _block(st.orelse, depth + 1, lines)
        elif isinstance(st, Return):
            r = "" if st.r_value is None else " ; R: " + fmt_operand(st.r_value)
            lines.append(f"{pad}return {fmt_operand(st.value) if st.value is not None else ''}{r}{tag}")
        elif isinstance(st, Effect):
            args = ", ".join(fmt_operand(a) for a in st.args)
            lines.append(f"{pad}{st.call}({args}){'  # ' + st.note if st.note else ''}{tag}")
        elif isinstance(st, (Break, Continue)):
            lines.append(f"{pad}{type(st).__name__.lower()}{tag}")
