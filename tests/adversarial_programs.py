"""Adversarial programs about NumPy's memory model, for tests/test_adversarial.py.

Written from NumPy's semantics alone (not from rop's internals): names are references, basic
slices / ``.T`` / ``np.transpose`` / ``reshape`` / ``ravel`` of a contiguous array are views,
``a += x`` writes into the array that every other name, view or container slot holding it sees,
``a = a + x`` builds a new array, and arithmetic such as ``W * 1.0`` or ``W + 0.0`` is a new
array.  Every program is a plain function the way a NumPy user writes it; rop reads its source
through ``inspect``, so they live, undecorated, in this real file.  The comment line above each
program says what NumPy does and hence what rop has to reproduce.

No program writes into one of its parameters (nor into a view of one): the test checks that the
original function leaves its inputs untouched as well.

Sections (name prefixes): alias_ (writes through one name or view, reads through another),
cont_ (lists and tuples holding arrays that are written afterwards), rval_ (right-hand sides
that could be mistaken for the same memory), swap_ (tuple assignment), aug_ (augmented
assignment), path_ (control flow mixed with writes), misc_.
"""
# flake8: noqa

import math

import numpy as np


# ============================================================================ alias_

# `b = a` binds a second name to the same array: the write through `a` is seen through `b`.
def alias_name_write_read(W):
    a = np.zeros(3)
    b = a
    a[0] = 2.0 * W[0]
    return b * W


# the write goes through the second name and is read through the first
def alias_name_write_other(W):
    a = np.zeros(3)
    b = a
    b[1] = W[1] * W[2]
    return a + W


# an inactive constant overwrites one entry of an active array, read through the other name
def alias_name_active_base(W):
    a = W * 2.0
    b = a
    a[0] = 1.0
    return b * W


# a chain of names c -> b -> a: all three are one array
def alias_chain_names(W):
    a = np.ones(3)
    b = a
    c = b
    c[2] = np.sin(W[0])
    return a * W[1]


# y = x[1:] is a view: y[0] is x[1]
def alias_slice_write_view(W):
    x = np.zeros(4)
    y = x[1:]
    y[0] = W[0] * W[1]
    return x * W


# a write into the base x is seen by the view y = x[1:] created before it
def alias_slice_write_base(W):
    x = 2.0 * W
    y = x[1:]
    x[1] = W[0] ** 2
    return y * 3.0


# a strided view e = x[::2] written as a whole fills every other entry of x
def alias_step_view_write(W):
    x = np.zeros(6)
    e = x[::2]
    e[:] = W[:3] * W[3:]
    return x + W


# the base of a strided view is written; the view (x[0], x[2], x[4]) sees x[2]
def alias_step_base_write(W):
    x = np.exp(W)
    e = x[::2]
    x[2] = 0.0
    return e * W[:3]


# a column view c = A[:, 0] written as a whole fills column 0 of A
def alias_col_view_write(W):
    A = np.zeros((3, 2))
    c = A[:, 0]
    c[:] = W[:, 0] * W[:, 1]
    return A * W


# the base A is written at (0, 1): the column view c = A[:, 1] sees it
def alias_col_base_write(W):
    A = np.tanh(W)
    c = A[:, 1]
    A[0, 1] = W[0, 0] ** 2
    return c * W[:, 0]


# B = A.T is a view: row 0 of B is column 0 of A
def alias_T_write_view(W):
    A = np.zeros((2, 3))
    B = A.T
    B[0] = W[:, 0] * W[:, 1]
    return A * W


# the base A is written; its transpose B, taken before, sees the write
def alias_T_write_base(W):
    A = W * W
    B = A.T
    A[1, 2] = np.cos(W[0, 0])
    return B @ W


# np.transpose(A) is a view like A.T: a row write into A shows up as a column of B
def alias_np_transpose_write_base(W):
    A = np.zeros((2, 3))
    B = np.transpose(A)
    A[0] = W[0] * W[1]
    return B * W.T


# a write through np.transpose(A) lands in A
def alias_np_transpose_write_view(W):
    A = 1.0 + W ** 2
    B = np.transpose(A)
    B[2, 1] = W[0, 0] * 5.0
    return np.sum(A * W), A


# a.reshape(2, 3) of a fresh contiguous array is a view: row 1 of M is a[3:]
def alias_reshape_write_view(W):
    a = np.zeros(6)
    M = a.reshape(2, 3)
    M[1, :] = W[0, :] * W[1, :]
    return a * 2.0, M


# the base a is written after M = a.reshape(2, 3): M[1, 1] is a[4]
def alias_reshape_write_base(W):
    a = np.sin(W)
    M = a.reshape(2, 3)
    a[4] = W[0] * W[5]
    return M @ M.T


# np.reshape(a, shape) of a contiguous array is a view too
def alias_np_reshape_write_base(W):
    a = W * 1.5
    M = np.reshape(a, (3, 2))
    a[0] = W[5] ** 2
    return M.sum(axis=1) * W[:3]


# reshape(-1) of a fresh 2-d array is a view: writing the flat view writes A
def alias_reshape_flat_write_view(W):
    A = np.zeros((2, 3))
    r = A.reshape(-1)
    r[4] = W[1, 1] * W[0, 2]
    return A * W


# A.ravel() of a contiguous array is a view: r[1] is A[0, 1]
def alias_ravel_write_view(W):
    A = np.zeros((2, 3))
    r = A.ravel()
    r[1] = W[0, 1] * W[1, 2]
    return A * W


# the base of a ravel view is written: r[3] is A[1, 0]
def alias_ravel_write_base(W):
    A = W * 3.0
    r = A.ravel()
    A[1, 0] = W[0, 0] ** 3
    return r * r


# writes through the view y = x[1:] inside a loop fill x[1:]
def alias_loop_write_view(W):
    x = np.zeros(5)
    y = x[1:]
    for i in range(4):
        y[i] = W[i] * W[i + 1]
    return x * W


# the loop writes x[i] and reads the reversed view y[i] = x[3 - i]: old values for i < 2,
# values written earlier in the loop for i >= 2
def alias_loop_reversed_view_read(W):
    x = np.ones(4)
    y = x[::-1]
    s = 0.0
    for i in range(4):
        x[i] = W[i] ** 2
        s = s + y[i] * W[i]
    return s, x


# a write through the view in one branch, through the base in the other (c = +-1)
def alias_branch_write_view(W, c):
    x = np.zeros(3)
    y = x[:2]
    if c > 0.0:
        y[1] = W[0] * W[2]
    else:
        x[1] = -W[1]
    return x * W


# `b = a` only in one branch: the later write into b reaches a only when c > 0
def alias_branch_alias_created_in_branch(W, c):
    a = W * 2.0
    b = np.zeros(3)
    if c > 0.0:
        b = a
    b[0] = W[1] ** 2
    return a * W, b


# a view of a view: z = x[1:][::2] is x[1], x[3], x[5]
def alias_view_chain(W):
    x = np.zeros(6)
    y = x[1:]
    z = y[::2]
    z[1] = W[0] * W[1]
    return x * W


# a row of the transpose is a column of the base
def alias_view_chain_T_row(W):
    A = np.zeros((3, 3))
    B = A.T
    r = B[1]
    r[:] = W[0] * W[1]
    return A * W


# a column of a reshape view: c is a[1], a[3], a[5]
def alias_view_chain_reshape_col(W):
    a = np.zeros(6)
    M = a.reshape(3, 2)
    c = M[:, 1]
    c[:] = np.exp(W[:3])
    return a * W


# the base is written after a view of a view was taken: z = x[2:] sees x[3]
def alias_view_of_view_write_base(W):
    x = np.cos(W)
    y = x[1:]
    z = y[1:]
    x[3] = W[0] * W[1]
    return z * 2.0


# write through a view, then reduce the base
def alias_view_write_reduce_base(W):
    x = W * W
    y = x[2:]
    y[0] = 3.0 * W[0]
    return np.sum(x), np.mean(x * W)


# scale a column in place through its view, then reduce the base over rows
def alias_col_aug_reduce_base(W):
    A = W @ W.T
    c = A[:, 0]
    c *= 2.0
    return A.sum(axis=0)


# an inactive value (from X, not differentiated) written through a column view of an active
# array: the R of that column becomes zero
def alias_view_write_inactive(W, X):
    x = np.exp(W)
    y = x[:, 0]
    y[:] = X[:, 1]
    return x.sum(axis=1) * W[:, 1]


# zeros (inactive) read later through an alias and a view both created BEFORE the active write
def alias_zeros_alias_before_write(W):
    a = np.zeros(3)
    b = a
    c = a[1:]
    a[:] = W * W
    return b + c.sum()


# zeros, a transposed view taken first, then the rows filled with active values in a loop
def alias_zeros_T_before_fill(W):
    h = np.zeros((3, 3))
    cols = h.T
    for i in range(3):
        h[i] = np.tanh(W[i] * float(i + 1))
    return cols @ W


# an inactive array (built from X) becomes active through a write into its base; the strided
# view taken before the write must become active too
def alias_inactive_view_becomes_active(W, X):
    a = X * 1.0
    v = a[::2]
    a[0] = W[0] ** 2
    return v * W[:2]


# y = a[:] is a view of all of a
def alias_full_slice_view(W):
    a = np.zeros(3)
    b = a[:]
    b[:] = W + 1.0
    return a * W


# x[None, :] is a view with a new axis
def alias_newaxis_view(W):
    x = W * 1.0
    y = x[None, :]
    x[0] = W[1] ** 2
    return y * W[:, None]


# A[..., 0] is a view (the first column)
def alias_ellipsis_view(W):
    A = W * 1.0
    c = A[..., 0]
    A[1, 0] = W[0, 1] * W[1, 2]
    return c * 2.0


# a 2-d block view: B[0, 0] is A[1, 1]
def alias_block_view_write(W):
    A = np.ones((3, 3))
    B = A[1:, 1:]
    B[0, 0] = W[0, 0] * W[2, 2]
    B[1, :] = W[1, :2]
    return A * W


# negative-start view: y = x[-2:] is x[2], x[3]
def alias_negative_slice_view(W):
    x = np.zeros(4)
    y = x[-2:]
    y[1] = W[3] * W[0]
    return x + W


# x is rebound to a NEW array: the view y of the OLD x is not affected by writes into the new x
def alias_rebind_base_then_write(W):
    x = W * 1.0
    y = x[1:]
    x = W * 3.0
    x[1] = W[0]
    return y * W[1:], x


# `prev = h` without a copy: prev and h are the same array at every step
def alias_prev_without_copy(W):
    h = np.zeros(3)
    total = 0.0
    for t in range(3):
        prev = h
        h[t] = np.tanh(W[t] + total)
        total = total + np.sum(prev * W)
    return total, h


# writes through a view inside a while loop with a counter
def alias_while_write_view(W):
    x = np.zeros(4)
    y = x[::-1]
    k = 0
    while k < 4:
        y[k] = W[k] * (k + 1.0)
        k += 1
    return x * W


# the gradient of sum(log cosh(W X - T)) computed with an alias: D -= T changes Z as well
def alias_grad_logcosh(W, X, T):
    Z = W @ X
    D = Z
    D -= T
    Z[:] = np.tanh(Z)
    return D @ X.T


# a column view of a fresh array written in a loop, then a matrix product with the base
def alias_col_view_fill_matmul(W, X):
    H = np.zeros((3, 4))
    for j in range(4):
        col = H[:, j]
        col[:] = np.tanh(W @ X[:, j])
    return H @ X.T


# ============================================================================ cont_

# hs holds THE array h: a write into h after the append is seen through hs[0]
def cont_append_then_write(W):
    hs = []
    h = np.zeros(3)
    hs.append(h)
    h[0] = 1.0
    return hs[0] * W


# an active array appended, then one entry overwritten with another active value
def cont_append_active_then_write(W):
    hs = []
    h = W * 2.0
    hs.append(h)
    h[1] = W[0] ** 2
    return hs[0] * W


# zeros appended (inactive), then filled with active values through the name h
def cont_append_zeros_then_active_write(W):
    hs = []
    h = np.zeros(3)
    hs.append(h)
    h[:] = np.sin(W)
    return hs[0] * W, h


# a list literal [a, b] holds a and b; both are written through their own names afterwards
def cont_list_literal_write(W):
    a = W * 1.5
    b = np.ones(3)
    hs = [a, b]
    a[0] = W[2] * W[1]
    b[2] = W[0]
    return hs[0] + hs[1] * W


# a tuple (a, 2.0) holds a: a write into a is seen through t[0]
def cont_tuple_literal_write(W):
    a = W * W
    t = (a, 2.0)
    a[1] = 0.5
    return t[0] * t[1] * W


# an element taken out (h = hs[0]) and written: hs[0] is h
def cont_take_out_write(W):
    hs = [W * 2.0, W + 1.0]
    h = hs[0]
    h[1] = W[2] ** 2
    return hs[0] * W


# zeros in a list literal, one taken out and written with an active value
def cont_take_out_write_zeros(W):
    hs = [np.zeros(3), np.zeros(3)]
    h = hs[1]
    h[1] = W[0] * W[1]
    return hs[1] + hs[0], hs[1] * W


# the element taken out of an appended list and written in a loop
def cont_take_out_write_loop(W):
    hs = []
    for k in range(3):
        hs.append(W * float(k + 1))
    for k in range(3):
        h = hs[k]
        h[k] = 0.0
    return hs[0] + hs[1] * hs[2]


# a nested list [[a], ...]: outer[0][0] is a
def cont_nested_list_write(W):
    a = np.zeros(3)
    inner = [a]
    outer = [inner, W * 1.0]
    a[2] = W[0] * 3.0
    return outer[0][0] * W + outer[1]


# a nested tuple ((a, 1.0), 3.0): t[0][0] is a
def cont_nested_tuple_write(W):
    a = W * 2.0
    t = ((a, 1.0), 3.0)
    a[0] = W[1] ** 2
    return t[0][0] * t[0][1] * t[1]


# hs[-1] is the last element
def cont_negative_last(W, X):
    hs = [X, W * 2.0]
    return hs[-1] * 3.0


# hs[-2] and hs[-1]
def cont_negative_second_last(W, X):
    hs = [X, W * 2.0, W * W]
    return hs[-2] * hs[-1]


# hs[-1] after appends, then written through the element's own name
def cont_negative_after_append_write(W):
    hs = [W * 1.0]
    h = np.zeros(3)
    hs.append(h)
    h[2] = W[0] * W[1]
    return hs[-1] + hs[-2]


# a per-layer MLP appending to acts and reading acts[-1]
def cont_mlp_acts_last(Ws, X):
    acts = [X]
    for W in Ws:
        acts.append(np.tanh(W @ acts[-1]))
    return acts[-1]


# the same with a counted loop, returning a loss and the second-to-last activation
def cont_mlp_acts_range(Ws, X):
    acts = [X]
    for i in range(len(Ws)):
        acts.append(np.tanh(Ws[i] @ acts[-1]))
    return 0.5 * np.sum(acts[-1] ** 2), acts[-2]


# the gradient of 0.5 ||tanh-MLP(X) - T||^2 with acts[-1] and a reversed list of gradients
def cont_mlp_grad_negative(Ws, X, T):
    acts = [X]
    for W in Ws:
        acts.append(np.tanh(W @ acts[-1]))
    d = acts[-1] - T
    grads = []
    for i in range(len(Ws) - 1, -1, -1):
        d = d * (1.0 - acts[i + 1] ** 2)
        grads.append(d @ acts[i].T)
        d = Ws[i].T @ d
    return grads[::-1]


# [h, h]: both slots are the same array; a write through one element shows in the other
def cont_same_array_twice(W):
    h = W * 1.0
    hs = [h, h]
    g = hs[0]
    g[1] = 0.0
    return hs[1] * W


# REFUSE: outside the accepted subset: `[h] * 2` (the same array in two slots) is refused at
# the line; lists are repeated only as `[None] * n`
def cont_list_repeat_same_array(W):
    h = np.zeros(3)
    hs = [h] * 2
    g = hs[0]
    g[0] = W[0] * W[2]
    return hs[1] * W


# replacing a slot (hs[0] = new array) does not write into the array that was there
def cont_slot_rebind_not_write(W):
    h = W * 2.0
    hs = [h]
    hs[0] = W * 3.0
    return h * W, hs[0]


# the same buffer appended at every step: all slots are one array, in its final state
def cont_append_same_buffer_loop(W):
    h = np.zeros(3)
    hs = []
    for t in range(3):
        h[t] = W[t] * (t + 1.0)
        hs.append(h)
    return hs[0] * W, hs[1]


# appending copies keeps every step's state
def cont_append_copy_loop(W):
    h = np.zeros(3)
    hs = []
    for t in range(3):
        h[t] = W[t] * (t + 1.0)
        hs.append(h.copy())
    return hs[0] * W, hs[1] + hs[2]


# unpacking a list (a, b = hs) binds the very arrays: a write into a is seen via hs[0]
def cont_unpack_then_write(W):
    hs = [W * 2.0, W * 3.0]
    a, b = hs
    a[0] = W[2] ** 2
    return hs[0] * b


# unpacking a tuple of fresh arrays, then writing one of them, read via the tuple
def cont_tuple_unpack_write(W):
    pair = (W * 2.0, W + 3.0)
    a, b = pair
    b[1] = W[0] * W[2]
    return pair[1] * a


# the list itself is returned after an element's array is written
def cont_return_list_after_write(W):
    h = W * 1.0
    g = np.ones(3)
    hs = [h, g]
    h[0] = W[1] * W[2]
    g[1] = W[0]
    return hs


# an element written through the list slot as a whole (hs[1] = ...) and read through the
# name that held the old array: the old array is unchanged
def cont_slot_replace_then_write_old(W):
    h = np.zeros(3)
    hs = [W * 1.0, h]
    hs[1] = W * W
    h[0] = W[0]
    return hs[1] + h


# a row view (contiguous) stored in a list; the base is written afterwards: hs[0] is A[0]
def cont_row_view_in_list_base_written(W):
    A = W * 2.0
    hs = [A[0]]
    A[0, 1] = W[1, 1] ** 2
    return hs[0] * W[1]


# a strided view stored in a list with its base NEVER written afterwards
def cont_col_view_in_list_no_write(W):
    A = np.tanh(W)
    hs = [A[:, 0], A[:, 1]]
    return hs[0] * hs[1], A.T @ A


# a transposed view appended; the base is not written afterwards
def cont_T_appended_no_write(W):
    A = W * W
    hs = []
    hs.append(A.T)
    return hs[0] @ W


# REFUSE: a strided column view in a list literal, its base written in place afterwards
def cont_view_col_in_list_base_written(W):
    A = W * 2.0
    hs = [A[:, 0]]
    A[1, 0] = 5.0
    return hs[0] * W[:, 1]


# REFUSE: A.T appended to a list, then A written in place
def cont_view_T_appended_base_written(W):
    A = np.tanh(W)
    hs = []
    hs.append(A.T)
    A[0, 1] = W[0, 0] ** 2
    return hs[0] @ W


# REFUSE: a strided (step 2) view appended in a loop, the base written after the loop
def cont_view_step_appended_base_written(W):
    x = W * 1.0
    hs = []
    for k in range(2):
        hs.append(x[k::2])
    x[0] = W[3] ** 2
    return hs[0] * hs[1]


# REFUSE: a column view stored in a [None] * n list slot, the base written in place later
def cont_view_col_slot_base_written(W):
    A = np.exp(W)
    hs = [None] * 2
    hs[0] = A[:, 1]
    hs[1] = W[:, 0] * 1.0
    A[2, 1] = W[0, 0] * W[1, 1]
    return hs[0] * hs[1]


# REFUSE: a column view stored in a list, its base then written in place by A *= 2.0
def cont_view_col_in_list_base_aug(W):
    A = W * 1.0
    hs = [A[:, 0]]
    A *= 2.0
    return hs[0] * W[:, 0]


# ============================================================================ rval_

# z = W + C is a new array: writing it leaves W alone
def rval_sum_then_write(W, C):
    z = W + C
    z[0] = 0.0
    return z, 3.0 * W


# the gradient of 0.5 ||M (W0 + dW) X||^2 + lam/2 ||dW||^2 (M zeroes row 0), with the
# row of W2 = W0 + dW zeroed in place
def rval_update_then_write_grad(W0, dW, X, lam):
    W2 = W0 + dW
    W2[0, :] = 0.0
    g = (W2 @ X) @ X.T
    g[0, :] = 0.0
    return g + lam * dW


# p = a + 1.0 is computed before a is written: p keeps the old values
def rval_copy_expr_then_write_base(W):
    a = W * 2.0
    p = a + 1.0
    a[0] = W[1] ** 3
    return p * a


# y = W * 1.0 is a new array
def rval_times_one_then_write(W):
    y = W * 1.0
    y[1] = 0.0
    return y + W


# y = W + 0.0 is a new array
def rval_plus_zero_then_write(W):
    y = W + 0.0
    y[0] = W[2] * 2.0
    return y * W


# y = 1.0 * W (constant on the left) is a new array
def rval_one_times_then_write(W):
    y = 1.0 * W
    y[2] = W[0]
    return y * W


# y = W - 0.0 is a new array
def rval_minus_zero_then_write(W):
    y = W - 0.0
    y[1] = W[1] ** 2
    return y + W


# y = W / 1.0 is a new array
def rval_div_one_then_write(W):
    y = W / 1.0
    y[0] = 1.0
    return y * W


# y = +W (np.positive) is a new array
def rval_unary_plus_then_write(W):
    y = +W
    y[1] = 0.5
    return y * W


# y = -(-W) is a new array
def rval_double_neg_then_write(W):
    y = -(-W)
    y[2] = W[0] * W[1]
    return y + W


# y = W ** 1 is a new array
def rval_pow_one_then_write(W):
    y = W ** 1
    y[0] = 3.0
    return y * W


# np.multiply(W, 1.0) and np.add(W, 0.0) are new arrays
def rval_np_funcs_identity_then_write(W):
    y = np.multiply(W, 1.0)
    z = np.add(W, 0.0)
    y[0] = 0.0
    z[1] = 0.0
    return y * z, W


# a parameter c that happens to be 1.0 at run time: y = W * c is still a new array
def rval_scale_param_one(W, c):
    y = W * c
    y[0] = 0.0
    return y, W * W


# a zero parameter array C: W + C is still a new array
def rval_add_param_zeros(W, C):
    y = W + C
    y[:] = 2.0 * y
    return y * W, W


# y = x + 0.0 of a local: writing y does not change x
def rval_local_plus_zero(W):
    x = np.tanh(W)
    y = x + 0.0
    y[0] = 5.0
    return x * W, y


# y = x * 1.0 made fresh at every iteration, written, used
def rval_loop_times_one(W):
    x = W * 2.0
    for i in range(3):
        y = x * 1.0
        y[i] = 0.0
        x = x + y * W
    return x


# W.T * 1.0 is a new (contiguous) array, not a view of W
def rval_T_times_one_then_write(W):
    A = W.T * 1.0
    A[0, 1] = 0.0
    return A @ W


# W @ I is a new array
def rval_matmul_identity_then_write(W):
    A = W @ np.eye(3)
    A[1, 1] = W[0, 0] ** 2
    return A * W, W


# np.where(W > 0, W, W) and np.clip with wide bounds are new arrays
def rval_where_clip_then_write(W):
    y = np.where(W > 0.0, W, W)
    z = np.clip(W, -10.0, 10.0)
    y[0] = 0.0
    z[1] = 0.0
    return y * z + W


# np.maximum(W, -10.0) (never clipping) is a new array
def rval_maximum_then_write(W):
    y = np.maximum(W, -10.0)
    y[2] = W[0] ** 2
    return y * W


# a sum (0-d) then used: the scalar is a value, not memory of W
def rval_sum_then_write_source(W):
    a = W * 1.0
    s = np.sum(a)
    a[0] = 0.0
    return s * a


# ============================================================================ swap_

# a, b = b, a swaps the names
def swap_pair(W, X):
    a = W * 2.0
    b = X + W
    a, b = b, a
    return a * W, b


# a Fibonacci-like recurrence of arrays: the right side is evaluated before binding
def swap_fib(W, n):
    a = W * 1.0
    b = W * W
    for i in range(n):
        a, b = b, a + b
    return a, b


# the recurrence starts from a parameter (never written)
def swap_fib_nonlinear(W, n):
    a = np.ones(3)
    b = W
    for i in range(n):
        a, b = b, a * 0.5 + np.tanh(b)
    return a + b


# double buffering with writes nxt[:] = f(cur): after the swap nxt is the old cur's buffer
def swap_double_buffer_write(W, n):
    cur = W * 1.0
    nxt = np.zeros(3)
    for i in range(n):
        nxt[:] = np.tanh(cur) * W
        cur, nxt = nxt, cur
    return cur, nxt


# double buffering by rebinding nxt = f(cur)
def swap_double_buffer_rebind(W, n):
    cur = W * 1.0
    nxt = np.zeros(3)
    for i in range(n):
        nxt = np.sin(cur) + W
        cur, nxt = nxt, cur
    return cur, nxt


# double buffering with element writes (a smoothing stencil)
def swap_double_buffer_elementwise(W):
    cur = W * 1.0
    nxt = np.zeros(4)
    for t in range(3):
        for i in range(4):
            nxt[i] = 0.5 * (cur[i] + cur[(i + 1) % 4]) * W[i]
        cur, nxt = nxt, cur
    return cur


# double buffering where the new buffer is written through a slice and one element
def swap_double_buffer_slices(W):
    cur = np.exp(W)
    nxt = np.empty(4)
    for t in range(2):
        nxt[1:] = cur[:-1] * W[1:]
        nxt[0] = cur[3] * W[0]
        cur, nxt = nxt, cur
    return cur * 1.0, nxt * 1.0


# a three-way rotation of fresh arrays, then a write into one of them
def swap_three_way(W):
    a = W * 1.0
    b = W * 2.0
    c = W * 3.0
    a, b, c = c, a, b
    a[0] = 0.0
    return a * b + c


# after the swap, b names the old a: the write lands in the old a
def swap_then_write(W):
    a = W * 1.0
    b = np.zeros(3)
    a, b = b, a
    b[0] = W[1] ** 2
    return a + b * W


# swapping two names of the same array keeps them the same array
def swap_alias_then_swap(W):
    a = W * 2.0
    b = a
    a, b = b, a
    a[1] = 0.0
    return b * W


# swapping names does not change what a list holds; the write goes to hs[1]'s array
def swap_names_list_holds(W):
    a = W * 1.0
    b = W * W
    hs = [a, b]
    a, b = b, a
    a[0] = 1.0
    return hs[1] * W, hs[0]


# scalar recurrence with tuple assignment
def swap_scalar_recurrence(a0, b0, n):
    a, b = a0, b0
    for i in range(n):
        a, b = b, a * b + 0.1
    return a, b


# views of a parameter unpacked and replaced by new arrays
def swap_tuple_unpack_slices(W):
    a, b = W[:2], W[2:]
    a, b = b * 2.0, a * 3.0
    return a * b


# the classic pitfall: A[0], A[1] = A[1], A[0] with rows that are VIEWS; row 0 gets row 1,
# then row 1 gets the (already overwritten) row 0, so both rows end up equal to the old row 1
def swap_rows_pitfall(W):
    A = W * 2.0
    A[0], A[1] = A[1], A[0]
    return A * W


# the correct swap of rows with copies
def swap_rows_copy(W):
    A = W * 2.0
    A[0], A[1] = A[1].copy(), A[0].copy()
    return A * W


# swapping scalar elements works (elements are copied out before the writes)
def swap_elements(W):
    x = W * W
    x[0], x[2] = x[2], x[0]
    return x * W


# swap in a while loop with a counter
def swap_while(W):
    a = W * 1.0
    b = W * 0.5
    k = 0
    while k < 4:
        a, b = b, 0.5 * (a + b) * W
        k += 1
    return a, b


# tuple assignment whose right side reads the array written by the left side's first target
def swap_write_read_same_statement(W):
    x = W * 1.0
    y = np.zeros(3)
    y, x = x, y
    x[:] = y * W
    return x, y


# gradient of a * b^2 + sin(a) * b with the two partials assigned by a tuple swap
def swap_grad_scalar(a, b):
    ga = b * b + math.cos(a) * b
    gb = 2.0 * a * b + math.sin(a)
    gb, ga = ga, gb
    return gb, ga


# ============================================================================ aug_

# += on a fresh array (no alias)
def aug_add_fresh(W, X):
    a = W * 2.0
    a += X
    a += W * W
    return a


# *= on a fresh array of ones
def aug_mul_fresh(W):
    a = np.ones(3)
    a *= W
    a *= W
    return a


# -= on a fresh array
def aug_sub_fresh(W, X):
    a = X * 1.0
    a -= W
    a -= np.sin(W)
    return a


# /= on a fresh array
def aug_div_fresh(W):
    a = W + 3.0
    a /= 1.0 + W * W
    return a


# **= on a fresh array
def aug_pow_fresh(W):
    a = W + 2.0
    a **= 2
    return a * W


# augmented assignment on numbers
def aug_scalar(a, b):
    s = a
    s += b
    s *= a
    s -= 1.0
    s /= b
    return s


# augmented assignment on numbers in a loop
def aug_scalar_loop(a, n):
    s = 1.0
    for i in range(n):
        s *= a
        s += 0.5 * a
    return s


# an element taken out (a numpy scalar: a copy) then updated in place; the array is untouched
def aug_scalar_from_element(W):
    s = W[0]
    s += W[1]
    s *= 2.0
    return s * W


# a 0-d sum updated with +=
def aug_zero_d_sum(W):
    s = np.sum(W * W)
    s += 1.0
    return s * W


# xs = [a]; a += W: the list sees the change (same array)
def aug_list_holds(W):
    a = W * 1.0
    xs = [a]
    a += W
    return xs[0] * W


# t = (a, 2.0); a *= 3.0: the tuple sees the change
def aug_tuple_holds(W):
    a = W * 1.0
    t = (a, 2.0)
    a *= 3.0
    return t[0] * t[1]


# b = a; a += W: b sees the change
def aug_name_alias(W):
    a = W * 1.0
    b = a
    a += W
    return b


# b = a; b -= W * W: a sees the change
def aug_name_alias_sub(W):
    a = W * 2.0
    b = a
    b -= W * W
    return a * W


# the view v = a[1:] sees a += W
def aug_view_sees_base(W):
    a = W * 2.0
    v = a[1:]
    a += W
    return v


# v = a[1:]; v *= ...: a sees the change
def aug_on_view_base_sees(W):
    a = W * 2.0
    v = a[1:]
    v *= W[1:]
    return a


# B = A.T; B += W: A gets W.T added
def aug_T_view(W):
    A = W * 1.0
    B = A.T
    B += W
    return A


# a += a doubles a
def aug_self(W):
    a = W * 1.0
    a += a
    return a * W


# a *= b with b the same array squares it
def aug_self_other_name(W):
    a = W * 1.0
    b = a
    a *= b
    return a + b


# overlapping in-place: a[1:] += a[:-1] (NumPy reads the right side as it was)
def aug_overlap_shift(W):
    a = W * 1.0
    a[1:] += a[:-1]
    return a * W


# overlapping in-place with a reversed view
def aug_overlap_reversed(W):
    a = W * 1.0
    a += a[::-1]
    return a * W


# hs[0] += W writes into the array that h names
def aug_list_element(W):
    h = W * 1.0
    hs = [h]
    hs[0] += W
    return h * W


# list elements updated in place in a loop; names held outside see the updates
def aug_list_elements_loop(W):
    a = W * 1.0
    b = np.zeros(3)
    hs = [a, b]
    for k in range(2):
        hs[k] *= W + float(k)
        hs[1 - k] += W
    return a * b


# broadcasting in place: A += b[:, None]
def aug_broadcast_col(W, b):
    A = W * 1.0
    A += b[:, None]
    return A * A


# broadcasting in place: A *= b (a row vector broadcast over rows)
def aug_broadcast_row(W, b):
    A = np.ones((3, 4))
    A += W
    A *= b
    return A


# in place on a slice
def aug_slice_add(W):
    a = W * 2.0
    a[1:] += W[1:]
    return a * W


# in place on fancy-indexed entries a[idx] *= 2 (idx has no repeats)
def aug_fancy_mul(W, idx):
    a = W * 1.0
    a[idx] *= 2.0
    return a * W


# a[idx] += W with a repeated index: NumPy applies only one of the repeated updates
def aug_fancy_repeated_index(W, idx):
    a = np.zeros(3)
    a[idx] += W
    return a * W


# in place on single elements
def aug_index_scalar(W):
    a = np.zeros(3)
    a[0] += W[1]
    a[2] -= W[0] * W[2]
    return a


# in place on a column
def aug_col_slice(W):
    A = W * W
    A[:, 0] += W[:, 1]
    return A


# in place on a 2-d block
def aug_2d_block(W):
    A = np.ones((3, 3))
    A[1:, 1:] *= W[:2, :2]
    return A * W


# in place on shrinking slices in a loop
def aug_slice_in_loop(W):
    a = np.zeros(4)
    for i in range(3):
        a[i:] += W[i] * W[i:]
    return a


# an accumulator updated in place; a name bound before the loop sees the final value
def aug_accumulate_alias_loop(W):
    acc = np.zeros(3)
    snap = acc
    for i in range(3):
        acc += W * float(i + 1)
    return snap * W


# in place in one branch only (c = +-1); b aliases a
def aug_branch_alias(W, c):
    a = W * 1.0
    b = a
    if c > 0.0:
        a += W * W
    else:
        a -= W
    return b * 2.0


# a *= a[0]: the element is read (copied) before the in-place update
def aug_mul_by_own_element(W):
    a = W * 1.0
    a *= a[0]
    return a


# += with an int constant
def aug_int_constant(W):
    a = W * 1.0
    a += 1
    a *= 2
    return a * W


# the gradient of 0.5 ||X w - y||^2 + lam/2 ||w||^2 with in-place updates
def aug_ridge_grad(w, X, y, lam):
    r = X @ w
    r -= y
    g = X.T @ r
    g += lam * w
    return g


# the gradient of the mean logistic loss with in-place updates
def aug_logreg_grad(w, X, y):
    z = X @ w
    p = 1.0 / (1.0 + np.exp(-z))
    p -= y
    g = X.T @ p
    g /= X.shape[0]
    return g


# the gradient of sum(exp(W x)) + 0.5 ||W||^2 accumulated in place into one buffer
def aug_grad_accumulate_buffer(W, x):
    G = W * 1.0
    e = np.exp(W @ x)
    G += np.outer(e, x)
    return G


# ============================================================================ path_

# a loop fills out[i]
def path_fill_loop(W):
    out = np.zeros(4)
    for i in range(4):
        out[i] = W[i] ** 2 * (i + 1.0)
    return out


# each entry reads the previous one
def path_fill_cumulative(W):
    out = np.zeros(4)
    out[0] = W[0]
    for i in range(1, 4):
        out[i] = out[i - 1] * W[i] + 1.0
    return out


# a 2-d fill in nested loops
def path_fill_2d(W):
    out = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            out[i, j] = W[i] * W[j] + float(i - j)
    return out


# the value written depends on a branch on the data (entries away from 0)
def path_branch_write(W):
    out = np.zeros(4)
    for i in range(4):
        if W[i] > 0.0:
            out[i] = W[i] ** 2
        else:
            out[i] = -0.5 * W[i]
    return out


# a while loop with a counter fills the array
def path_while_counter_fill(W):
    out = np.zeros(4)
    i = 0
    while i < 4:
        out[i] = np.sin(W[i])
        i += 1
    return out * W


# a branch on a parameter chooses which entry is written (c = +-1)
def path_if_write_then_read(W, c):
    x = W * 2.0
    if c > 0.0:
        x[0] = W[1]
    else:
        x[1] = W[0]
    return x * W


# break on a value: entries after the first negative one stay zero
def path_break_on_value(W):
    out = np.zeros(5)
    for i in range(5):
        if W[i] < 0.0:
            break
        out[i] = np.exp(W[i])
    return out


# continue skips the write for negative entries
def path_continue_write(W):
    out = np.ones(5)
    for i in range(5):
        if W[i] < 0.0:
            continue
        out[i] = W[i] * W[(i + 1) % 5]
    return out


# a reversed loop fills a running sum backwards
def path_reversed_fill(W):
    out = np.zeros(4)
    acc = 0.0
    for i in reversed(range(4)):
        acc = acc * 0.5 + W[i]
        out[i] = acc
    return out


# rows filled with products in a loop
def path_fill_rows_matmul(W, X):
    H = np.zeros((3, 4))
    for i in range(3):
        H[i] = np.tanh(W[i] @ X)
    return H


# an entry written twice, the second write reading the first
def path_overwrite_twice(W):
    out = np.zeros(3)
    out[0] = W[0]
    out[0] = out[0] * W[1]
    out[2] = out[0] + W[2]
    return out


# an early return after a write (c = +-1)
def path_early_return_after_write(W, c):
    out = W * 1.0
    out[0] = W[1] * W[2]
    if c > 0.0:
        return out
    out[1] = W[0] ** 2
    return out * 2.0


# a recurrent network filling the columns of H
def path_rnn_fill(Wh, Wx, X):
    H = np.zeros((3, 5))
    for t in range(4):
        H[:, t + 1] = np.tanh(Wh @ H[:, t] + Wx @ X[:, t])
    return H


# the gradient of the Rosenbrock function accumulated into a zero buffer
def path_grad_rosenbrock_fill(x):
    g = np.zeros(4)
    for i in range(3):
        t = x[i + 1] - x[i] ** 2
        g[i] += -400.0 * x[i] * t - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * t
    return g


# a while loop halving entries until all are small; the branch boundary is far away
def path_while_halve_entries(W):
    x = W * 1.0
    k = 0
    while np.max(np.abs(x)) > 0.3 and k < 30:
        x[k % 3] = x[k % 3] * 0.5
        k += 1
    return x


# a while loop that writes and breaks
def path_while_break_write(W):
    out = np.zeros(5)
    i = 0
    while True:
        out[i] = W[i] * W[i]
        i += 1
        if i >= 4:
            break
    return out + W


# nested branch inside a nested loop writing a 2-d array
def path_nested_if_fill(W):
    A = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            if i < j:
                A[i, j] = W[i] * W[j]
            elif i == j:
                A[i, j] = np.exp(W[i])
            else:
                A[i, j] = -W[j]
    return A @ W


# a fill whose index is a while counter counting down
def path_while_countdown_fill(W):
    out = np.zeros(4)
    k = 3
    while k >= 0:
        out[k] = W[k] * (4.0 - k)
        k -= 1
    return out * W


# the gradient of sum_i log(1 + x_i^2) + 0.5 * sum_i (x_{i+1} - x_i)^2 filled entry by entry
def path_grad_smooth_fill(x):
    g = np.zeros(4)
    for i in range(4):
        g[i] = 2.0 * x[i] / (1.0 + x[i] ** 2)
    for i in range(3):
        d = x[i + 1] - x[i]
        g[i] -= d
        g[i + 1] += d
    return g


# ============================================================================ misc_

# .copy() breaks the alias, plain assignment does not
def misc_copy_vs_assign(W):
    a = W * 2.0
    b = a.copy()
    c = a
    a[0] = 0.0
    return b * W, c * W


# np.copy breaks the alias
def misc_np_copy(W):
    a = W * 2.0
    b = np.copy(a)
    a[1] = W[0] ** 2
    return a + b


# x = x rebinds to the same array; nothing changes
def misc_rebind_self(W):
    x = W * 1.0
    x = x
    x[0] = 3.0
    return x * W


# a[...] = value writes every entry of a
def misc_ellipsis_assign(W, X):
    a = np.zeros(3)
    a[...] = W * X
    return a


# a[...] = value is seen through an alias
def misc_ellipsis_assign_alias(W):
    a = W * 1.0
    b = a
    a[...] = W * W
    return b


# a[:] = b * W where b is a: the right side is evaluated first, then written into a
def misc_fullslice_assign_self_alias(W):
    a = W * 2.0
    b = a
    a[:] = b * W
    return a + b


# a[:] = a[::-1]: NumPy handles the overlap (the result is the reversed array)
def misc_fullslice_assign_reversed(W):
    a = W * 1.0
    a[:] = a[::-1]
    return a * W


# a[1:] = a[:-1]: overlapping shift (NumPy copies as if through a temporary)
def misc_shifted_assign(W):
    a = W * 1.0
    a[1:] = a[:-1]
    return a


# the same array returned twice
def misc_return_twice(W):
    y = W * 2.0
    return y, y


# two names of one array returned after a write through one of them
def misc_return_alias_after_write(W):
    y = W * 2.0
    z = y
    y[0] = 0.0
    return y, z


# returning a parameter itself
def misc_return_param(W, X):
    return W


# returning the transpose of a parameter (a view of it)
def misc_return_param_T(W):
    return W.T


# a parameter and an expression of it
def misc_return_param_and_expr(W):
    return W, W * W


# views of a parameter returned
def misc_return_param_views(W):
    return W[1:], W[::2]


# reshape(-1) of a parameter returned
def misc_return_param_reshape(W):
    return W.reshape(-1)


# a list holding the same array twice returned
def misc_list_return_same_twice(W):
    h = W * 1.0
    return [h, h]


# a parameter bound to other names and transposed, read only
def misc_param_alias_read_only(W):
    A = W
    B = A.T
    return A @ B


# np.zeros_like then written
def misc_zeros_like_write(W):
    a = np.zeros_like(W)
    a[1] = W[1] ** 2
    return a + W


# np.empty filled whole, then updated in place
def misc_empty_fill(W):
    a = np.empty(3)
    a[:] = W
    a[0] *= 2.0
    return a * W


# np.full then an element written
def misc_full_write(W):
    a = np.full(3, 2.0)
    a[1] = W[0] * W[2]
    return a * W


# np.ones_like then a slice written
def misc_ones_like_write(W):
    a = np.ones_like(W)
    a[:2] = W[1:] ** 2
    return a * W


# a[:] = scalar, then an element
def misc_write_scalar_broadcast(W):
    a = W * 1.0
    a[:] = 0.5
    a[0] = W[0]
    return a * W


# a copy of a view of a parameter written; the parameter is untouched
def misc_view_of_param_copy_write(W):
    v = W[1:]
    c = v.copy()
    c[0] = 0.0
    return c * v


# the transpose of a parameter copied, then written
def misc_copy_T_write(W):
    A = W.T.copy()
    A[0, 0] = 0.0
    return A @ W


# np.where then written
def misc_where_then_write(W):
    y = np.where(W > 0.0, W, 0.1 * W)
    y[0] = 1.0
    return y * W


# a = b = expr binds both names to the SAME array
def misc_chained_assign(W):
    a = b = W * 2.0
    a[0] = 1.0
    return b * W


# a = b = np.zeros(3): one array
def misc_chained_assign_zeros(W):
    a = b = np.zeros(3)
    a[:] = W
    b[1] = W[0]
    return a * b


# an annotated assignment binds like a plain one
def misc_annotated_alias(W):
    a: np.ndarray = W * 2.0
    b = a
    b[0] = 0.0
    return a * W


# writes that read entries written by earlier statements
def misc_write_reading_self(W):
    a = W * 1.0
    a[0] = a[1] * a[2]
    a[1] = a[0] + a[2]
    return a


# a negative index write
def misc_negative_index_write(W):
    a = W * 1.0
    a[-1] = W[0] * W[1]
    return a


# an integer index from a parameter
def misc_int_index_param(W, i):
    a = W * 1.0
    a[i] = 0.0
    return a * W


# float(a[0]) is a copy: a later write does not change it
def misc_float_of_element(W):
    a = np.zeros(2)
    a[0] = W[0] * W[1]
    s = float(a[0])
    a[0] = 5.0
    return s * W, a


# a[0] is a numpy scalar, copied out: a later write into a does not change s
def misc_scalar_element_copy(W):
    a = W * 1.0
    s = a[0]
    a[0] = 0.0
    return s * a


# two names of one array summed (no writes)
def misc_sum_of_alias(W):
    a = W * 1.0
    b = a
    return a + b


# a helper-free normalisation done in place: x /= norm (x fresh)
def misc_normalize_in_place(W):
    x = W * 1.0
    x /= np.sqrt(np.sum(x * x))
    return x


# a copy taken before each in-place step keeps the history
def misc_prev_with_copy(W):
    h = np.zeros(3)
    total = 0.0
    for t in range(3):
        prev = h.copy()
        h[t] = np.tanh(W[t] + total)
        total = total + np.sum(prev * W)
    return total, h


# the gradient of 0.5 ||A w - b||^2 where r and g are the same array (r -= b through an alias)
def misc_quad_grad_alias(w, A, b):
    g = A @ w
    r = g
    r -= b
    return A.T @ g


# a write into a view of a copy leaves the original alone
def misc_view_of_copy_write(W):
    a = W * 2.0
    c = a.copy()
    v = c[1:]
    v[0] = 0.0
    return a * c


# ============================================================================ helpers
# (not programs: called by the misc_helper_* programs, and inlined or called as NumPy does)

def set_first(a, value):
    a[0] = value
    return a


def scale_in_place(a, k):
    a *= k
    return a


# ============================================================================ more alias_ / misc_

# reshape of a NON-contiguous array (A.T) is a copy: writing it leaves A alone
def alias_reshape_of_T_is_copy(W):
    A = W * 1.0
    B = A.T.reshape(-1)
    B[0] = 0.0
    return A * W, B


# fancy indexing (an index array) reads a copy: writing it leaves x alone
def alias_fancy_read_is_copy(W, idx):
    x = W * 2.0
    y = x[idx]
    y[0] = 0.0
    return x * W, y


# a row of a 2-d array (x[1]) is a view; an element of a 1-d array is a copy
def alias_row_view_vs_element(W):
    A = W * 1.0
    r = A[1]
    e = A[0, 0]
    A[1, 1] = 0.0
    A[0, 0] = 7.0
    return r * e, A


# a view of a view, updated in place, seen by the base
def alias_aug_view_of_view(W):
    x = W * 1.0
    y = x[1:]
    z = y[::2]
    z += W[1::2] ** 2
    return x


# x[:] = x * x reads the old x before writing it
def misc_self_referential_slice_assign(W):
    x = W * 1.0
    x[:] = x * x + W
    return x


# a boolean mask write (relu in place), the mask computed before the write
def misc_mask_write(W):
    y = W * 1.0
    mask = y < 0.0
    y[mask] = 0.0
    return y * W


# a[...] += b writes every entry in place, seen through an alias
def misc_ellipsis_aug_alias(W):
    a = W * 1.0
    b = a
    a[...] += W * W
    return b


# a helper that writes into its argument and returns it: h is changed as well
def misc_helper_writes_arg(W):
    h = W * 2.0
    g = set_first(h, W[1] ** 2)
    return h * W, g


# a helper that scales its argument in place (a *= k): the caller's array changes
def misc_helper_aug_arg(W):
    h = W + 1.0
    scale_in_place(h, 3.0)
    return h * W


# the element of an appended list updated in place in a loop through hs[-1]
def cont_last_element_aug_loop(W):
    hs = [W * 1.0]
    for k in range(3):
        h = hs[-1]
        h += W * float(k)
    return hs[0] * W


# an array and a view of it returned together, after a write into the base
def misc_return_array_and_view(W):
    a = W * 2.0
    v = a[1:]
    a[2] = W[0] * W[1]
    return a, v


# a relaxation whose state is updated in place (x[:] = x_new): the R-state follows the write
def misc_relaxation_in_place(W):
    x = np.zeros(3)
    change = 1.0
    it = 0
    while change > 1e-12 and it < 200:
        x_new = 0.5 * np.tanh(W * x + 1.0)
        change = np.max(np.abs(x_new - x))
        x[:] = x_new
        it += 1
    return x * W


# a view of each list element, scaled in place in a loop: the list sees both writes
def cont_view_of_element_aug_loop(W):
    hs = [W * 1.0, W * 2.0]
    for k in range(2):
        v = hs[k][1:]
        v *= W[0]
    return hs[0] + hs[1]


# a row written through the transpose of a fresh matrix is a column of the matrix
def alias_T_row_write_matmul_base(W):
    A = np.outer(W, W)
    B = A.T
    B[0, :] = W
    return A @ W


# `b = a` on one path only: the write through b reaches a on that path
def alias_branch_one_path_then_write(W):
    a = W * 2.0
    if W[0] > -10.0:
        b = a
    else:
        b = W * 3.0
    b[1] = W[2] ** 2
    return a * W


# the same array appended each iteration and updated in place: every slot is that array
def cont_same_object_appended_aug(W):
    h = np.zeros(3)
    hs = []
    for i in range(3):
        h += W * (i + 1.0)
        hs.append(h)
    return hs[0] * W



def _cell(x, h, p):
    h_new = np.tanh(p['W'] * h + x)
    cache = (h_new, h, p)
    return h_new, cache


# a cache tuple holding a dict keeps the objects it was built with: rebinding the caller's `h`
# to the new state afterwards does not change the `h` the cache holds
def cont_cache_with_dict_keeps_binding(W):
    p = {'W': W}
    h = W * 0.5
    h, cache = _cell(W[::-1] * 1.0, h, p)
    h_new, h_prev, q = cache
    return h_new * h_prev + q['W'] * h


# a list of such caches, unpacked again in a second loop (a course's RNN forward/backward)
def cont_cache_list_with_dict(W):
    p = {'W': W}
    h = W * 0.5
    caches = []
    for t in range(3):
        h, cache = _cell(W * (t + 1.0), h, p)
        caches.append(cache)
    caches = (caches, h)
    (caches, out) = caches
    for t in range(3):
        h_new, h_prev, q = caches[t]
        out = out + h_new * h_prev * q['W']
    return out


# `+` of two lists is a new list holding the same arrays (concatenation, not a sum); an
# in-place update of an array the new list holds is seen through the old list
def cont_list_concat(W):
    a = [W * 2.0]
    b = [W * W, W + 1.0]
    c = a + b
    h = c[1]
    h += W
    return c[0] * c[2] + b[0]
