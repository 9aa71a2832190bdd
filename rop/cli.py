"""``rop-compile``: the command-line compiler.

    rop-compile examples/mlp.py:backprop --shapes W1=8x4,b1=8,W2=3x8,b2=3,X=4x16,T=3x16

reads one function from a Python file, applies R{·} to it and writes the generated module
(plain Python + Numba) to a file.  It behaves like a compiler: diagnostics go to stderr as
``file:line:col: error: message`` with the source line and a caret, the exit status is 0 on
success, 1 on an error in the code or a failed ``--check``, 2 on a malformed command line,
and no Python traceback is printed unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import re
import sys
import traceback

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EMITS = ("module", "source", "graph", "dot", "svg")

EPILOG = """\
examples:
  # compile the MLP of examples/mlp.py (already decorated with @rop, so --wrt is optional)
  rop-compile examples/mlp.py:backprop --shapes W1=8x4,b1=8,W2=3x8,b2=3,X=4x16,T=3x16

  # print the generated R{backprop} instead of writing it
  rop-compile examples/mlp.py:backprop --shapes W1=8x4,b1=8,W2=3x8,b2=3,X=4x16,T=3x16 --emit source

  # an undecorated function: name the parameters to differentiate
  rop-compile model.py:grad --wrt W,b --shapes W=10x5,b=10,x=5 -o grad_hvp.py

  # per-layer lists of arrays, and a check of Hv against central finite differences
  rop-compile examples/deep_mlp.py:backprop --shapes 'Ws=[4x3,2x4],bs=[4,2],X=3x5,T=2x5' --check

  # the dataflow graph: as text, as Graphviz DOT, as an SVG picture (matplotlib, no binary)
  rop-compile examples/mlp.py:backprop --shapes ... --emit graph
  rop-compile examples/mlp.py:backprop --shapes ... --emit dot -o mlp.dot
  rop-compile examples/mlp.py:backprop --shapes ... --emit svg -o mlp.svg

shapes (--shapes NAME=SPEC,...; rop specializes on the ranks, --check also uses the sizes):
  AxB        a float64 array of shape (A, B) (any number of dimensions: AxBxC)
  N          a float64 vector of length N
  scalar     a Python float
  int:K      the Python int K (a loop count, a layer count, ...)
  float:K    the Python float K
  [S1,S2]    a list of the above (per-layer lists)
  SPEC*S     the random draw of SPEC scaled by S (e.g. W=8x8*0.3 for a contraction)
  pos:SPEC   a positive draw of SPEC, |x| + 0.1 (e.g. probabilities, variances)
  {K=S,...}  a dict of the above with string keys (a dict of parameters)
  labels:N:C N random integer class labels in [0, C) (an integer array)
Parameters with a default value may be left out; they take their default.

output:
  without --emit the generated module is written to <function>_hvp.py (or -o FILE) and its
  path printed; --emit source|graph|dot prints to stdout (or writes -o FILE); --emit svg writes
  <function>_hvp.svg (or -o FILE).  --check alone compiles and checks without writing.

exit status: 0 success, 1 error in the code or --check above --tol, 2 malformed command line.
"""


class CliError(Exception):
    """An error to print as a diagnostic (already formatted) and exit 1."""


class UsageError(Exception):
    """A malformed command line: exit 2."""


# ----------------------------------------------------------------------------- --shapes

_DIMS = re.compile(r"^\d+(x\d+)*$")


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside brackets."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced `{ch}`")
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError("unbalanced `[` or `{`")
    out.append("".join(cur))
    return out


def parse_spec(spec: str):
    """One shape spec -> a description: ("array", shape) | ("scalar",) | ("int", k) |
    ("float", x) | ("list", [specs])."""
    s = spec.strip()
    if not s:
        raise ValueError("empty shape")
    m = re.match(r"^(?P<base>.+)\*(?P<scale>[^*\]]+)$", s)
    if m:
        try:
            scale = float(m.group("scale"))
        except ValueError:
            raise ValueError(f"`{s}`: SHAPE*S needs a number S") from None
        inner = parse_spec(m.group("base"))
        if inner[0] in ("int", "float"):
            raise ValueError(f"`{s}`: int:K and float:K are values, not random draws to scale")
        return ("scale", scale, inner)
    if s.startswith("pos:"):
        inner = parse_spec(s[4:])
        if inner[0] in ("int", "float"):
            raise ValueError(f"`{s}`: pos: applies to random draws, not to int:K or float:K")
        return ("pos", inner)
    if s.startswith("["):
        if not s.endswith("]"):
            raise ValueError(f"`{s}`: a list is written [S1,S2,...]")
        inner = s[1:-1].strip()
        if not inner:
            raise ValueError("an empty list has no element type; give at least one element")
        return ("list", [parse_spec(p) for p in _split_top(inner)])
    if s.startswith("{"):
        if not s.endswith("}"):
            raise ValueError(f"`{s}`: a dict is written {{K1=S1,K2=S2,...}}")
        items = {}
        for part in _split_top(s[1:-1]):
            k, eq, sub = part.strip().partition("=")
            if not eq or not k.strip():
                raise ValueError(f"`{part}` in `{s}` is not KEY=SPEC")
            items[k.strip()] = parse_spec(sub)
        return ("dict", items)
    if s.startswith("labels:"):
        try:
            n, c = (int(t) for t in s[7:].split(":"))
        except ValueError:
            raise ValueError(f"`{s}`: labels:N:C needs integers N (how many) and C (classes)") \
                from None
        return ("labels", n, c)
    if s == "scalar":
        return ("scalar",)
    if s.startswith("int:"):
        try:
            return ("int", int(s[4:]))
        except ValueError:
            raise ValueError(f"`{s}`: int:K needs an integer K") from None
    if s.startswith("float:"):
        try:
            return ("float", float(s[6:]))
        except ValueError:
            raise ValueError(f"`{s}`: float:K needs a number K") from None
    if _DIMS.match(s):
        return ("array", tuple(int(d) for d in s.split("x")))
    raise ValueError(f"`{s}` is not a shape: write AxB (an array), N (a vector), scalar, int:K, "
                     "float:K or [S1,S2,...] (a list), optionally *S to scale the draw")


def parse_shapes(text: str) -> dict:
    """``NAME=SPEC,NAME=SPEC`` (brackets may hold commas) -> {name: spec}."""
    out = {}
    try:
        items = _split_top(text)
    except ValueError as exc:
        raise UsageError(f"--shapes {text!r}: {exc}") from None
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, eq, spec = item.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier():
            raise UsageError(f"--shapes: `{item}` is not NAME=SHAPE (e.g. W1=8x4, b1=8, "
                             "Ws=[4x3,2x4], lr=scalar)")
        if name in out:
            raise UsageError(f"--shapes: `{name}` is given twice")
        try:
            out[name] = parse_spec(spec)
        except ValueError as exc:
            raise UsageError(f"--shapes: {name}: {exc}") from None
    return out


def draw(spec, rng):
    """A random value for a shape description."""
    kind = spec[0]
    if kind == "array":
        return rng.standard_normal(spec[1])
    if kind == "scalar":
        return float(rng.standard_normal())
    if kind in ("int", "float"):
        return spec[1]
    if kind == "scale":
        return _scaled(draw(spec[2], rng), spec[1])
    if kind == "pos":
        x = draw(spec[1], rng)
        return [abs(e) + 0.1 for e in x] if isinstance(x, list) else abs(x) + 0.1
    if kind == "dict":
        return {k: draw(s, rng) for k, s in spec[1].items()}
    if kind == "labels":
        return rng.integers(0, spec[2], size=spec[1])
    return [draw(s, rng) for s in spec[1]]


def _scaled(x, a):
    if isinstance(x, list):
        return [_scaled(e, a) for e in x]
    return a * x


def _like(x, rng):
    """A random direction shaped like the parameter value ``x``."""
    if isinstance(x, (list, tuple)):
        return [_like(e, rng) for e in x]
    if isinstance(x, dict):
        return {k: _like(e, rng) for k, e in x.items()}
    if isinstance(x, np.ndarray):
        return rng.standard_normal(x.shape)
    return float(rng.standard_normal())


def _axpy(x, a, d):
    if isinstance(x, (list, tuple)):
        return [_axpy(e, a, f) for e, f in zip(x, d)]
    if isinstance(x, dict):
        return {k: _axpy(e, a, d[k]) for k, e in x.items()}
    return x + a * d


def flatten(x) -> list:
    """The leaves of nested tuples/lists (Numba typed lists included) as float arrays."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return [np.asarray(x, dtype=float)]
    if isinstance(x, dict):  # by key: the compiled code's dicts and the function's agree
        return [leaf for k in sorted(x) for leaf in flatten(x[k])]
    if hasattr(x, "__len__") and hasattr(x, "__getitem__"):
        out = []
        for e in x:
            out += flatten(e)
        return out
    return [np.asarray(x, dtype=float)]


# ----------------------------------------------------------------------------- loading

def _error(path, message, lineno=None, col=None, line_text=None, hint=None) -> CliError:
    loc = path if lineno is None else f"{path}:{lineno}" + ("" if col is None else f":{col}")
    out = [f"{loc}: error: {message}"]
    if line_text:
        out.append("    " + line_text.rstrip("\n").expandtabs())
        if col is not None:
            out.append("    " + " " * max(col - 1, 0) + "^")
    if hint:
        out.append(f"hint: {hint}")
    return CliError("\n".join(out))


def load_function(target: str):
    """``path/to/module.py:function`` -> (the function object, the module path)."""
    path, sep, fname = target.rpartition(":")
    if not sep or not path or not fname:
        raise UsageError(f"`{target}`: expected path/to/module.py:function")
    if not fname.isidentifier():
        raise UsageError(f"`{fname}` is not a function name")
    if not os.path.isfile(path):
        raise CliError(f"{path}: error: no such file")
    path = os.path.abspath(path)
    moddir = os.path.dirname(path)
    modname = os.path.splitext(os.path.basename(path))[0]
    if modname in sys.modules or modname in sys.builtin_module_names:
        modname = f"_rop_user_{modname}"  # never shadow an imported (or stdlib) module
    if moddir not in sys.path:
        sys.path.insert(0, moddir)
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise CliError(f"{path}: error: cannot import this file as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    from .errors import RopError
    try:
        spec.loader.exec_module(module)
    except RopError as exc:  # @rop at module level refused the function: its diagnostic
        raise CliError(str(exc)) from exc
    except SyntaxError as exc:
        raise _error(exc.filename or path, f"invalid Python: {exc.msg}", exc.lineno, exc.offset,
                     exc.text) from exc
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if os.path.abspath(f.filename) == path]
        f = frames[-1] if frames else None
        raise _error(path, f"importing the module raised {type(exc).__name__}: {exc}",
                     f.lineno if f else None, None, f.line if f else None) from exc
    fn = getattr(module, fname, None)
    if fn is None:
        defined = sorted(n for n, v in vars(module).items()
                         if callable(v) and getattr(v, "__module__", None) == modname
                         or type(v).__name__ == "RopFunction")
        raise CliError(f"{path}: error: no function `{fname}` in {os.path.basename(path)}"
                       + (f" (it defines: {', '.join(defined)})" if defined else ""))
    return fn, path


def prepare(fn, path, wrt, mode):
    """The function as a RopFunction with the requested wrt and mode."""
    from .api import RopFunction, rop
    from .errors import RopError
    base = fn.fn if isinstance(fn, RopFunction) else fn
    if not inspect.isfunction(base):
        raise CliError(f"{path}: error: `{getattr(fn, '__name__', fn)}` is not a function")
    if wrt is None:
        if not isinstance(fn, RopFunction):
            raise UsageError(f"{base.__name__} is not decorated with @rop: name the parameters "
                             "to differentiate with --wrt NAME,NAME,...")
        wrt = fn.wrt
    params = list(inspect.signature(base).parameters)
    bad = [w for w in wrt if w not in params]
    if bad:
        try:
            lines, first = inspect.getsourcelines(base)
            idx = next(i for i, t in enumerate(lines) if t.lstrip().startswith("def "))
            text = lines[idx]
            col = text.index("def ") + 1
            lineno = first + idx
        except (OSError, TypeError, StopIteration, ValueError):
            lineno = col = text = None
        raise _error(path, f"--wrt names `{bad[0]}`, which is not a parameter of "
                     f"{base.__name__}({', '.join(params)})", lineno, col, text,
                     hint="--wrt takes parameter names of the function, separated by commas")
    try:
        return rop(base, wrt=tuple(wrt), mode=mode)
    except RopError as exc:
        raise CliError(str(exc)) from exc


def arguments(rf, shapes: dict, seed: int):
    """Positional arguments for ``rf`` drawn from ``shapes`` (defaults fill the rest)."""
    sig = rf.signature
    params = sig.parameters
    unknown = [n for n in shapes if n not in params]
    if unknown:
        raise UsageError(f"--shapes names `{unknown[0]}`, which is not a parameter of "
                         f"{rf.fn.__name__}({', '.join(params)})")
    missing = [n for n, p in params.items()
               if n not in shapes and p.default is inspect.Parameter.empty]
    if missing:
        raise UsageError(
            f"rop specializes {rf.fn.__name__} on the ranks of its arguments: give --shapes for "
            f"{', '.join(missing)} (e.g. --shapes {','.join(f'{m}=AxB' for m in missing)}; "
            "see --help for vectors, scalars and lists)")
    rng = np.random.default_rng(seed)
    args = []
    for n, p in params.items():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise CliError(f"error: parameter `{n}` of {rf.fn.__name__} is not a plain "
                           "positional parameter; rop-compile cannot pass it")
        args.append(draw(shapes[n], rng) if n in shapes else p.default)
    return args, rng


# ----------------------------------------------------------------------------- check

def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    scale = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    diff = float(np.max(np.abs(a - b), initial=0.0))
    return 0.0 if diff == 0.0 else diff / scale


def check(rf, args, rng, step=1e-5):
    """(Hv error, output error): the compiled Hv against central differences of the original
    Python function along a random direction, and the compiled outputs against the original's."""
    names = list(rf.signature.parameters)
    idx = [names.index(w) for w in rf.wrt]
    v = [_like(args[i], rng) for i in idx]
    out, hv = rf.hvp(*args, v=tuple(v))

    def shifted(a):
        xs = list(args)
        for i, d in zip(idx, v):
            xs[i] = _axpy(args[i], a, d)
        return flatten(rf.fn(*xs))

    plus, minus = shifted(step), shifted(-step)
    fd = [(p - m) / (2 * step) for p, m in zip(plus, minus)]
    hv, ref = flatten(hv), flatten(rf.fn(*args))
    if len(hv) != len(fd):
        raise CliError(f"error: the compiled Hv has {len(hv)} outputs, the function "
                       f"{len(fd)}")
    err_hv = max((rel_err(h, f) for h, f in zip(hv, fd)), default=0.0)
    err_out = max((rel_err(o, r) for o, r in zip(flatten(out), ref)), default=0.0)
    return err_hv, err_out, len(fd)


# ----------------------------------------------------------------------------- main

def _parser():
    from . import __version__
    p = argparse.ArgumentParser(
        prog="rop-compile",
        description="Apply Pearlmutter's R{.} operator to a NumPy gradient function and write "
                    "the generated Hessian-vector-product module (plain Python, compiled by "
                    "Numba).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="path/to/module.py:function",
                   help="the function to compile")
    p.add_argument("--wrt", metavar="W1,b1,...",
                   help="parameters to differentiate (default: the @rop decorator's)")
    p.add_argument("--shapes", metavar="NAME=AxB,...", action="append", default=[],
                   help="argument shapes (repeatable; see below)")
    p.add_argument("-o", "--output", metavar="FILE", help="where to write the output")
    p.add_argument("--emit", choices=EMITS, default="module",
                   help="what to produce (default: the generated module, written to a file)")
    p.add_argument("--check", action="store_true",
                   help="check Hv against central finite differences of the original function")
    p.add_argument("--tol", type=float, default=1e-6,
                   help="--check fails above this max relative error (default 1e-6)")
    p.add_argument("--seed", type=int, default=0, help="random seed of --check (default 0)")
    p.add_argument("--fd-step", type=float, default=1e-5,
                   help="step of the central differences of --check (default 1e-5)")
    p.add_argument("--mode", choices=("numba", "python"), default="numba",
                   help="run the generated code with Numba (default) or as plain Python")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks")
    p.add_argument("--version", action="version", version=f"rop-compile (rop) {__version__}")
    return p


def _write(path, text):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def run(ns) -> int:
    from . import inspection
    shapes = {}
    for text in ns.shapes:
        for k, s in parse_shapes(text).items():
            if k in shapes:
                raise UsageError(f"--shapes: `{k}` is given twice")
            shapes[k] = s
    wrt = None
    if ns.wrt is not None:
        wrt = [w.strip() for w in ns.wrt.split(",") if w.strip()]
        if not wrt or not all(w.isidentifier() for w in wrt):
            raise UsageError(f"--wrt {ns.wrt!r}: expected parameter names separated by commas")
    fn, path = load_function(ns.target)
    rf = prepare(fn, path, wrt, ns.mode)
    args, rng = arguments(rf, shapes, ns.seed)
    from .errors import RopError, RopSyntaxError
    try:
        rf.hvp.compile(*args)
    except RopSyntaxError as exc:
        raise CliError(str(exc)) from exc
    except RopError as exc:
        raise CliError(f"{path}: error: {exc}") from exc
    name = rf.fn.__name__
    insp = inspection.Inspection(rf)
    if ns.emit == "module":
        if not ns.check or ns.output:
            out = ns.output or f"{name}_hvp.py"
            _write(out, insp.source)
            print(out)
    elif ns.emit == "svg":
        out = ns.output or f"{name}_hvp.svg"
        insp.svg(out)
        print(out)
    else:
        text = {"source": lambda: insp.source, "graph": insp.graph_text,
                "dot": insp.dot}[ns.emit]()
        if ns.output:
            _write(ns.output, text if text.endswith("\n") else text + "\n")
            print(ns.output)
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if ns.check:
        try:
            err, err_out, n = check(rf, args, rng, ns.fd_step)
        except RopError as exc:
            raise CliError(f"error: {exc}") from exc
        ok = err <= ns.tol and err_out <= ns.tol
        stream = sys.stdout if ns.emit in ("module", "svg") or ns.output else sys.stderr
        print(f"check {name}: Hv vs central differences (step {ns.fd_step:g}, seed {ns.seed}) "
              f"over {n} output{'s' if n != 1 else ''}: max relative error {err:.3e}; outputs vs the original "
              f"function: {err_out:.3e} -- {'ok' if ok else 'FAILED'} (tol {ns.tol:g})",
              file=stream)
        if not ok:
            return EXIT_ERROR
    return EXIT_OK


def main(argv=None) -> int:
    parser = _parser()
    ns = parser.parse_args(argv)
    try:
        return run(ns)
    except UsageError as exc:
        if ns.debug:
            traceback.print_exc()
        parser.print_usage(sys.stderr)
        print(f"rop-compile: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        if ns.debug:
            traceback.print_exc()
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in rop or in the user's function at run time
        if ns.debug:
            traceback.print_exc()
        from .errors import RopError
        kind = "" if isinstance(exc, RopError) else f"{type(exc).__name__}: "
        print(f"rop-compile: error: {kind}{exc}", file=sys.stderr)
        if not ns.debug and not isinstance(exc, RopError):
            print("(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
