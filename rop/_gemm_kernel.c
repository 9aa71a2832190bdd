/* The rt.gemm kernel in C: the same function as rop/runtime/blas.py's `_kernel` (`_plan`,
 * `_run`, `_blas_op`), built when rop is installed so that the first network compiled on a
 * machine does not spend ~1 s compiling it with Numba (benchmarks/results/compile_profile.md).
 *
 * Generated code calls it by symbol name with one argument, the descriptor its shim wrote on
 * its stack (int64 slots; the layout is blas.py's: out, its shape, the number of products,
 * c, the phase, the error, the scratch size, then each product's a and b as address, byte
 * strides 0 and 1, rows, cols).  Phase 0 plans: the output's shape as NumPy's
 * `a1 @ b1 + ... + c` would have it, or an error code, and the scratch the run needs.
 * Phase 1 runs: out = c (broadcast) + each product, added into out by one dgemm call when it
 * has out's shape, else computed in scratch and broadcast into out.  Any change here must
 * be made in blas.py too: tests/test_gemm.py runs both against NumPy.
 *
 * dgemm is SciPy's (scipy.linalg.cython_blas), the BLAS Numba's own `@` calls, set once at
 * import by `set_dgemm`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*dgemm_t)(char *, char *, int *, int *, int *, double *, double *, int *,
                        double *, int *, double *, double *, int *);
static dgemm_t dgemm_ = NULL;

enum { OUT = 0, M = 1, P = 2, N = 3, HAS_C = 4, C = 5, PHASE = 10, ERR = 11, NEED = 12,
       PAIRS = 14, MAX_PAIRS = 4, BROADCAST = MAX_PAIRS + 1 };

#define AT(addr) ((double *)(intptr_t)(addr))

static int64_t max1(int64_t x) { return x > 1 ? x : 1; }

/* (op, ld) of a row-major (rows, cols) operand with byte strides (s0, s1) for the
   column-major call: 'N' = as stored, 'T' = transposed; 0 = not a BLAS layout. */
static char blas_op(int64_t s0, int64_t s1, int64_t rows, int64_t cols, int64_t *ld)
{
    *ld = 0;
    if (s0 % 8 || s1 % 8)
        return 0;
    s0 /= 8;
    s1 /= 8;
    if ((s1 == 1 || cols <= 1) && (rows <= 1 || s0 >= max1(cols))) {
        *ld = max1(rows <= 1 ? cols : s0);
        return 'N';
    }
    if ((s0 == 1 || rows <= 1) && (cols <= 1 || s1 >= max1(rows))) {
        *ld = max1(cols <= 1 ? rows : s1);
        return 'T';
    }
    return 0;
}

static void plan(int64_t *d)
{
    int64_t n = d[N], m, p, need = 0, ld;
    for (int64_t q = 0; q < n; q++) {
        int64_t a = PAIRS + 10 * q;
        if (d[a + 4] != d[a + 8]) {
            d[ERR] = q + 1;
            return;
        }
    }
    m = d[PAIRS + 3];
    p = d[PAIRS + 9];
    for (int64_t q = 1; q < n + d[HAS_C]; q++) {
        int64_t base = PAIRS + 10 * q, r0, r1;
        if (q < n) {
            r0 = d[base + 3];
            r1 = d[base + 9];
        } else {
            r0 = d[C + 3];
            r1 = d[C + 4];
        }
        if (!((r0 == m || r0 == 1 || m == 1) && (r1 == p || r1 == 1 || p == 1))) {
            d[ERR] = BROADCAST;
            return;
        }
        if (m == 1)
            m = r0;
        if (p == 1)
            p = r1;
    }
    d[M] = m;
    d[P] = p;
    for (int64_t q = 0; q < n; q++) {
        int64_t a = PAIRS + 10 * q;
        for (int64_t x = a; x <= a + 5; x += 5)
            if (!blas_op(d[x + 1], d[x + 2], d[x + 3], d[x + 4], &ld))
                need += d[x + 3] * d[x + 4];
        if (d[a + 3] != m || d[a + 9] != p)
            need += d[a + 3] * d[a + 9];
    }
    d[NEED] = need;
}

static void run(int64_t *d, intptr_t scratch)
{
    int64_t m = d[M], p = d[P], n = d[N], has_c = d[HAS_C];
    double *out = AT(d[OUT]);
    intptr_t free_ = scratch;
    int64_t ld;
    for (int64_t q = 0; q < n; q++) { /* operands BLAS cannot read: a C-ordered copy */
        for (int64_t x = PAIRS + 10 * q; x <= PAIRS + 10 * q + 5; x += 5) {
            if (blas_op(d[x + 1], d[x + 2], d[x + 3], d[x + 4], &ld))
                continue;
            int64_t rows = d[x + 3], cols = d[x + 4];
            double *dst = AT(free_);
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < cols; j++)
                    dst[i * cols + j] = *AT(d[x] + i * d[x + 1] + j * d[x + 2]);
            d[x] = free_;
            d[x + 1] = 8 * cols;
            d[x + 2] = 8;
            free_ += 8 * rows * cols;
        }
    }
    if (has_c && d[C] != d[OUT]) { /* (c is out: the products are added into it) */
        int64_t s0 = d[C + 3] == 1 ? 0 : d[C + 1], s1 = d[C + 4] == 1 ? 0 : d[C + 2];
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < p; j++)
                out[i * p + j] = *AT(d[C] + i * s0 + j * s1);
    }
    for (int64_t q = 0; q < n; q++) {
        int64_t x = PAIRS + 10 * q;
        int64_t a = d[x], a0 = d[x + 1], a1 = d[x + 2], rows = d[x + 3], k = d[x + 4];
        int64_t b = d[x + 5], b0 = d[x + 6], b1 = d[x + 7], cols = d[x + 9];
        int first = !has_c && q == 0, direct = rows == m && cols == p;
        intptr_t target = d[OUT];
        if (!direct) {
            target = free_;
            free_ += 8 * rows * cols;
        }
        if (rows == 0 || cols == 0 || k == 0) {
            if (direct && first)
                memset(out, 0, sizeof(double) * m * p);
            else if (!direct)
                memset(AT(target), 0, sizeof(double) * rows * cols);
        } else {
            /* row-major target = a b is column-major target^T = b^T a^T: b goes first */
            int64_t ldb, lda;
            char opb = blas_op(b0, b1, k, cols, &ldb), opa = blas_op(a0, a1, rows, k, &lda);
            int dm = (int)cols, dn = (int)rows, dk = (int)k, ib = (int)ldb, ia = (int)lda,
                ic = (int)cols;
            double alpha = 1.0, beta = (first || !direct) ? 0.0 : 1.0;
            dgemm_(&opb, &opa, &dm, &dn, &dk, &alpha, AT(b), &ib, AT(a), &ia, &beta,
                   AT(target), &ic);
        }
        if (!direct) {
            double *tmp = AT(target);
            int64_t r = rows == 1 ? 0 : 1, c = cols == 1 ? 0 : 1;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < p; j++) {
                    double v = tmp[i * r * cols + j * c];
                    if (first)
                        out[i * p + j] = v;
                    else
                        out[i * p + j] += v;
                }
        }
    }
}

/* The C entry point: phase 0 plans, phase 1 runs; scratch only when some operand must be
   copied or some product broadcasts. */
static void rop_gemm_kernel(int64_t *d)
{
    if (d[PHASE] == 0) {
        plan(d);
    } else if (d[NEED]) {
        double *buf = (double *)malloc(sizeof(double) * (size_t)d[NEED]);
        if (buf == NULL)
            abort(); /* as Numba's np.empty would fail: no memory left to report with */
        run(d, (intptr_t)buf);
        free(buf);
    } else {
        run(d, 0);
    }
}

static PyObject *kernel_address(PyObject *self, PyObject *noargs)
{
    return PyLong_FromVoidPtr((void *)&rop_gemm_kernel);
}

static PyObject *set_dgemm(PyObject *self, PyObject *address)
{
    void *f = PyLong_AsVoidPtr(address);
    if (f == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "dgemm's address is 0");
        return NULL;
    }
    dgemm_ = (dgemm_t)f;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"kernel_address", kernel_address, METH_NOARGS,
     "The address of the kernel (void kernel(int64_t *descriptor))."},
    {"set_dgemm", set_dgemm, METH_O,
     "Set the dgemm the kernel calls (scipy.linalg.cython_blas's, by address)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gemm_kernel",
                                    "rt.gemm's kernel in C (see rop/runtime/blas.py).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__gemm_kernel(void) { return PyModule_Create(&module); }
