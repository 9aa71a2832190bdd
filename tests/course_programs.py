"""Backprop code written the way courses, books and tutorials write it (issue 18).

Each section imitates one well-known style -- CS231n assignments, deeplearning.ai notebooks,
Karpathy's min-char-rnn and Pong policy gradient, Nielsen's "Neural Networks and Deep
Learning", "Neural Networks from Scratch" (nnfs), UFLDL, Andrew Ng's Machine Learning course
and Specialization, CS224n's word2vec, d2l -- written from scratch in that style, NOT adapted
to what rop accepts: dict-valued parameters, classes and methods, ``y is None``, string
arguments choosing branches, per-time-step dicts, caches in nested tuples, in-place masks.
The gradients are all computed by hand (the backward pass); tests/test_courses.py checks
every one against a separate JAX oracle and runs it through rop.

The programs are the module-level functions and methods named in test_courses.ENTRIES; the
other functions and classes here are their helpers.
"""

import numpy as np


# =============================================================================================
# CS231n: classifiers/neural_net.py, layers.py, layer_utils.py, linear_svm.py, softmax.py,
# rnn_layers.py
# =============================================================================================

def two_layer_net_loss(params, X, y=None, reg=0.0):
    """Loss and gradients for a two-layer fully connected net (ReLU, softmax)."""
    W1, b1 = params['W1'], params['b1']
    W2, b2 = params['W2'], params['b2']
    N, D = X.shape

    # Compute the forward pass
    scores = None
    h1 = np.maximum(0, X.dot(W1) + b1)
    scores = h1.dot(W2) + b2

    # If the targets are not given then jump out, we're done
    if y is None:
        return scores

    # Compute the loss
    loss = None
    shift_scores = scores - np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(shift_scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    correct_logprobs = -np.log(probs[np.arange(N), y])
    data_loss = np.sum(correct_logprobs) / N
    reg_loss = reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    loss = data_loss + reg_loss

    # Backward pass: compute gradients
    grads = {}
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    grads['W2'] = np.dot(h1.T, dscores) + 2 * reg * W2
    grads['b2'] = np.sum(dscores, axis=0)
    dhidden = np.dot(dscores, W2.T)
    dhidden[h1 <= 0] = 0
    grads['W1'] = np.dot(X.T, dhidden) + 2 * reg * W1
    grads['b1'] = np.sum(dhidden, axis=0)

    return loss, grads


class TwoLayerNet(object):
    """input - fully connected layer - ReLU - fully connected layer - softmax"""

    def __init__(self, input_size, hidden_size, output_size, std=1e-4, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {}
        self.params['W1'] = std * rng.randn(input_size, hidden_size)
        self.params['b1'] = np.zeros(hidden_size)
        self.params['W2'] = std * rng.randn(hidden_size, output_size)
        self.params['b2'] = np.zeros(output_size)

    def loss(self, X, y=None, reg=0.0):
        W1, b1 = self.params['W1'], self.params['b1']
        W2, b2 = self.params['W2'], self.params['b2']
        N, D = X.shape

        hidden = X.dot(W1) + b1
        hidden[hidden < 0] = 0
        scores = hidden.dot(W2) + b2
        if y is None:
            return scores

        exp_scores = np.exp(scores - scores.max(axis=1).reshape(-1, 1))
        probs = exp_scores / exp_scores.sum(axis=1).reshape(-1, 1)
        loss = -np.sum(np.log(probs[range(N), y]))
        loss /= N
        loss += 0.5 * reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))

        grads = {}
        dscores = probs
        dscores[range(N), y] -= 1
        dscores /= N
        grads['W2'] = hidden.T.dot(dscores) + reg * W2
        grads['b2'] = dscores.sum(axis=0)
        dhidden = dscores.dot(W2.T)
        dhidden[hidden <= 0] = 0
        grads['W1'] = X.T.dot(dhidden) + reg * W1
        grads['b1'] = dhidden.sum(axis=0)
        return loss, grads


def affine_forward(x, w, b):
    """(N, d_1, ..., d_k) inputs, reshaped to rows of dimension D = d_1 * ... * d_k."""
    out = None
    N = x.shape[0]
    D = np.prod(x.shape[1:])
    x_row = x.reshape(N, D)
    out = np.dot(x_row, w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx, dw, db = None, None, None
    N = x.shape[0]
    x_row = x.reshape(N, -1)
    dx = np.dot(dout, w.T).reshape(x.shape)
    dw = np.dot(x_row.T, dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    dx, x = None, cache
    dx = dout.copy()
    dx[x <= 0] = 0
    return dx


def affine_relu_forward(x, w, b):
    """Convenience layer: an affine transform followed by a ReLU."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    cache = (fc_cache, relu_cache)
    return out, cache


def affine_relu_backward(dout, cache):
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db


def softmax_loss(x, y):
    """x: (N, C) class scores; y: (N,) labels.  Returns (loss, dx)."""
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def svm_loss(x, y):
    N = x.shape[0]
    correct_class_scores = x[np.arange(N), y]
    margins = np.maximum(0, x - correct_class_scores[:, np.newaxis] + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = np.zeros_like(x)
    dx[margins > 0] = 1
    dx[np.arange(N), y] -= num_pos
    dx /= N
    return loss, dx


def affine_relu_net_loss(X, y, W1, b1, W2, b2, reg=0.0):
    """A two-layer net assembled from the layer_utils helpers, as FullyConnectedNet does."""
    h1, cache1 = affine_relu_forward(X, W1, b1)
    scores, cache2 = affine_forward(h1, W2, b2)
    data_loss, dscores = softmax_loss(scores, y)
    reg_loss = 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    loss = data_loss + reg_loss
    dh1, dW2, db2 = affine_backward(dscores, cache2)
    dX, dW1, db1 = affine_relu_backward(dh1, cache1)
    dW2 += reg * W2
    dW1 += reg * W1
    return loss, (dW1, db1, dW2, db2)


class FullyConnectedNet(object):
    """{affine - relu} x (L - 1) - affine - softmax, parameters in self.params['W1'], ..."""

    def __init__(self, hidden_dims, input_dim, num_classes, reg=0.0, weight_scale=1e-2, seed=0):
        rng = np.random.RandomState(seed)
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.params = {}
        dims = [input_dim] + hidden_dims + [num_classes]
        for i in range(self.num_layers):
            self.params['W%d' % (i + 1)] = weight_scale * rng.randn(dims[i], dims[i + 1])
            self.params['b%d' % (i + 1)] = np.zeros(dims[i + 1])

    def loss(self, X, y=None):
        scores = None
        caches = []
        out = X
        for i in range(self.num_layers - 1):
            W, b = self.params['W%d' % (i + 1)], self.params['b%d' % (i + 1)]
            out, cache = affine_relu_forward(out, W, b)
            caches.append(cache)
        W, b = self.params['W%d' % self.num_layers], self.params['b%d' % self.num_layers]
        scores, cache = affine_forward(out, W, b)
        caches.append(cache)

        if y is None:
            return scores

        loss, grads = 0.0, {}
        loss, dout = softmax_loss(scores, y)
        for i in range(self.num_layers):
            W = self.params['W%d' % (i + 1)]
            loss += 0.5 * self.reg * np.sum(W * W)

        dout, dW, db = affine_backward(dout, caches[-1])
        grads['W%d' % self.num_layers] = dW + self.reg * self.params['W%d' % self.num_layers]
        grads['b%d' % self.num_layers] = db
        for i in range(self.num_layers - 2, -1, -1):
            dout, dW, db = affine_relu_backward(dout, caches[i])
            grads['W%d' % (i + 1)] = dW + self.reg * self.params['W%d' % (i + 1)]
            grads['b%d' % (i + 1)] = db
        return loss, grads


def svm_loss_naive(W, X, y, reg):
    """Structured SVM loss, naive implementation (with loops)."""
    dW = np.zeros(W.shape)  # initialize the gradient as zero

    # compute the loss and the gradient
    num_classes = W.shape[1]
    num_train = X.shape[0]
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + 1  # note delta = 1
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]

    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    return loss, dW


def svm_loss_vectorized(W, X, y, reg):
    loss = 0.0
    dW = np.zeros(W.shape)  # initialize the gradient as zero
    num_train = X.shape[0]
    scores = X.dot(W)
    correct_class_scores = scores[np.arange(num_train), y].reshape(num_train, 1)
    margins = np.maximum(0, scores - correct_class_scores + 1)
    margins[np.arange(num_train), y] = 0
    loss = np.sum(margins) / num_train
    loss += reg * np.sum(W * W)

    binary = margins
    binary[margins > 0] = 1
    row_sum = np.sum(binary, axis=1)
    binary[np.arange(num_train), y] = -row_sum.T
    dW = np.dot(X.T, binary)
    dW /= num_train
    dW += 2 * reg * W
    return loss, dW


def softmax_loss_naive(W, X, y, reg):
    loss = 0.0
    dW = np.zeros_like(W)
    num_classes = W.shape[1]
    num_train = X.shape[0]
    for i in range(num_train):
        scores = X[i].dot(W)
        scores -= np.max(scores)  # numeric stability
        p = np.exp(scores) / np.sum(np.exp(scores))
        loss += -np.log(p[y[i]])
        for j in range(num_classes):
            if j == y[i]:
                dW[:, j] += (p[j] - 1) * X[i]
            else:
                dW[:, j] += p[j] * X[i]
    loss /= num_train
    loss += 0.5 * reg * np.sum(W * W)
    dW /= num_train
    dW += reg * W
    return loss, dW


def softmax_loss_vectorized(W, X, y, reg):
    loss = 0.0
    dW = np.zeros_like(W)
    num_train = X.shape[0]
    scores = X.dot(W)
    scores -= np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    loss = np.sum(-np.log(probs[np.arange(num_train), y]))
    dscores = probs
    dscores[np.arange(num_train), y] -= 1
    dW = X.T.dot(dscores)
    loss /= num_train
    dW /= num_train
    loss += 0.5 * reg * np.sum(W * W)
    dW += reg * W
    return loss, dW


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param['mode']
    eps = bn_param.get('eps', 1e-5)
    N, D = x.shape
    out, cache = None, None
    if mode == 'train':
        sample_mean = np.mean(x, axis=0)
        sample_var = np.var(x, axis=0)
        x_hat = (x - sample_mean) / np.sqrt(sample_var + eps)
        out = gamma * x_hat + beta
        cache = (x, x_hat, sample_mean, sample_var, gamma, beta, eps)
    elif mode == 'test':
        x_hat = (x - bn_param['running_mean']) / np.sqrt(bn_param['running_var'] + eps)
        out = gamma * x_hat + beta
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)
    return out, cache


def batchnorm_backward(dout, cache):
    x, x_hat, mu, var, gamma, beta, eps = cache
    N = x.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * (var + eps) ** -1.5
    dmu = np.sum(dx_hat * -1 / np.sqrt(var + eps), axis=0) + dvar * np.mean(-2 * (x - mu), axis=0)
    dx = dx_hat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / N + dmu / N
    return dx, dgamma, dbeta


def batchnorm_grads(x, gamma, beta, dout, bn_param):
    """Forward then backward through batch normalisation (the gradient check's setting)."""
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    return out, dx, dgamma, dbeta


def dropout_forward(x, dropout_param, rand):
    """Inverted dropout; ``rand`` holds the uniform numbers np.random.rand(*x.shape) would."""
    p, mode = dropout_param['p'], dropout_param['mode']
    mask = None
    out = None
    if mode == 'train':
        mask = (rand < p) / p
        out = x * mask
    elif mode == 'test':
        out = x
    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    mode = dropout_param['mode']
    dx = None
    if mode == 'train':
        dx = dout * mask
    elif mode == 'test':
        dx = dout
    return dx


def dropout_net_loss(params, X, y, dropout_param, rand):
    h1, cache1 = affine_relu_forward(X, params['W1'], params['b1'])
    h1d, dcache = dropout_forward(h1, dropout_param, rand)
    scores, cache2 = affine_forward(h1d, params['W2'], params['b2'])
    loss, dscores = softmax_loss(scores, y)
    grads = {}
    dh1d, grads['W2'], grads['b2'] = affine_backward(dscores, cache2)
    dh1 = dropout_backward(dh1d, dcache)
    dX, grads['W1'], grads['b1'] = affine_relu_backward(dh1, cache1)
    return loss, grads


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(prev_h.dot(Wh) + x.dot(Wx) + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dtanh = dnext_h * (1 - next_h ** 2)
    dx = dtanh.dot(Wx.T)
    dprev_h = dtanh.dot(Wh.T)
    dWx = x.T.dot(dtanh)
    dWh = prev_h.T.dot(dtanh)
    db = np.sum(dtanh, axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros([N, T, H])
    cache = []
    prev_h = h0
    for t in range(T):
        next_h, cache_t = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = next_h
        cache.append(cache_t)
        prev_h = next_h
    return h, cache


def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx = np.zeros((D, H))
    dWh = np.zeros((H, H))
    db = np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t, :], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def rnn_grads(x, h0, Wx, Wh, b, dh):
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)
    return h, dx, dh0, dWx, dWh, db


def stable_sigmoid(x):
    """A numerically stable version of the logistic sigmoid function."""
    pos_mask = x >= 0
    neg_mask = x < 0
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    ai, af, ao, ag = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    i = stable_sigmoid(ai)
    f = stable_sigmoid(af)
    o = stable_sigmoid(ao)
    g = np.tanh(ag)
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    do = dnext_h * tanh_c
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    df = dc * prev_c
    di = dc * g
    dg = dc * i
    dprev_c = dc * f
    dai = di * i * (1 - i)
    daf = df * f * (1 - f)
    dao = do * o * (1 - o)
    dag = dg * (1 - g ** 2)
    da = np.hstack((dai, daf, dao, dag))
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = np.sum(da, axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_step_grads(x, prev_h, prev_c, Wx, Wh, b, dnext_h, dnext_c):
    next_h, next_c, cache = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    grads = lstm_step_backward(dnext_h, dnext_c, cache)
    return next_h, next_c, grads


def word_embedding_forward(x, W):
    out = W[x, :]
    cache = (x, W)
    return out, cache


def word_embedding_backward(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)
    return dW


def temporal_affine_forward(x, w, b):
    N, T, D = x.shape
    M = b.shape[0]
    out = x.reshape(N * T, D).dot(w).reshape(N, T, M) + b
    cache = x, w, b, out
    return out, cache


def temporal_affine_backward(dout, cache):
    x, w, b, out = cache
    N, T, D = x.shape
    M = b.shape[0]
    dx = dout.reshape(N * T, M).dot(w.T).reshape(N, T, D)
    dw = dout.reshape(N * T, M).T.dot(x.reshape(N * T, D)).T
    db = dout.sum(axis=(0, 1))
    return dx, dw, db


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)
    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat /= N
    dx_flat *= mask_flat[:, None]
    dx = dx_flat.reshape(N, T, V)
    return loss, dx


def caption_embedding_loss(W_embed, W_vocab, b_vocab, captions):
    """The word-embedding / temporal-affine / temporal-softmax part of CaptioningRNN.loss."""
    captions_in = captions[:, :-1]
    captions_out = captions[:, 1:]
    mask = captions_out != 0  # <NULL> is word 0
    x, embed_cache = word_embedding_forward(captions_in, W_embed)
    scores, affine_cache = temporal_affine_forward(x, W_vocab, b_vocab)
    loss, dscores = temporal_softmax_loss(scores, captions_out, mask)
    grads = {}
    dx, grads['W_vocab'], grads['b_vocab'] = temporal_affine_backward(dscores, affine_cache)
    grads['W_embed'] = word_embedding_backward(dx, embed_cache)
    return loss, grads


# =============================================================================================
# deeplearning.ai: logistic regression, planar data, deep nets, regularisation, dropout, RNN
# =============================================================================================

def sigmoid_lr(z):
    s = 1 / (1 + np.exp(-z))
    return s


def propagate(w, b, X, Y):
    """Cost function and gradient for logistic regression."""
    m = X.shape[1]

    # FORWARD PROPAGATION (FROM X TO COST)
    A = sigmoid_lr(np.dot(w.T, X) + b)
    cost = -1 / m * np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))

    # BACKWARD PROPAGATION (TO FIND GRAD)
    dw = 1 / m * np.dot(X, (A - Y).T)
    db = 1 / m * np.sum(A - Y)

    assert(dw.shape == w.shape)
    assert(db.dtype == float)
    cost = np.squeeze(cost)
    assert(cost.shape == ())

    grads = {"dw": dw,
             "db": db}

    return grads, cost


def sigmoid_dl(Z):
    A = 1 / (1 + np.exp(-Z))
    cache = Z
    return A, cache


def relu_dl(Z):
    A = np.maximum(0, Z)
    assert(A.shape == Z.shape)
    cache = Z
    return A, cache


def relu_backward_dl(dA, cache):
    Z = cache
    dZ = np.array(dA, copy=True)  # just converting dz to a correct object.
    # When z <= 0, you should set dz to 0 as well.
    dZ[Z <= 0] = 0
    assert (dZ.shape == Z.shape)
    return dZ


def sigmoid_backward_dl(dA, cache):
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    dZ = dA * s * (1 - s)
    assert (dZ.shape == Z.shape)
    return dZ


def linear_forward(A, W, b):
    Z = W.dot(A) + b
    assert(Z.shape == (W.shape[0], A.shape[1]))
    cache = (A, W, b)
    return Z, cache


def linear_activation_forward(A_prev, W, b, activation):
    if activation == "sigmoid":
        Z, linear_cache = linear_forward(A_prev, W, b)
        A, activation_cache = sigmoid_dl(Z)
    elif activation == "relu":
        Z, linear_cache = linear_forward(A_prev, W, b)
        A, activation_cache = relu_dl(Z)
    else:
        raise ValueError("activation must be 'sigmoid' or 'relu', got " + activation)
    assert (A.shape == (W.shape[0], A_prev.shape[1]))
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters):
    """[LINEAR->RELU]*(L-1)->LINEAR->SIGMOID"""
    caches = []
    A = X
    L = len(parameters) // 2  # number of layers in the neural network

    for l in range(1, L):
        A_prev = A
        A, cache = linear_activation_forward(A_prev, parameters['W' + str(l)],
                                             parameters['b' + str(l)], activation="relu")
        caches.append(cache)

    AL, cache = linear_activation_forward(A, parameters['W' + str(L)], parameters['b' + str(L)],
                                          activation="sigmoid")
    caches.append(cache)

    assert(AL.shape == (1, X.shape[1]))
    return AL, caches


def compute_cost(AL, Y):
    m = Y.shape[1]
    cost = (-1 / m) * np.sum(np.multiply(Y, np.log(AL)) + np.multiply(1 - Y, np.log(1 - AL)))
    cost = np.squeeze(cost)  # e.g. turns [[17]] into 17
    assert(cost.shape == ())
    return cost


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1. / m * np.dot(dZ, A_prev.T)
    db = 1. / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    assert (dA_prev.shape == A_prev.shape)
    assert (dW.shape == W.shape)
    assert (db.shape == b.shape)
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = relu_backward_dl(dA, activation_cache)
        dA_prev, dW, db = linear_backward(dZ, linear_cache)
    elif activation == "sigmoid":
        dZ = sigmoid_backward_dl(dA, activation_cache)
        dA_prev, dW, db = linear_backward(dZ, linear_cache)
    return dA_prev, dW, db


def L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)  # the number of layers
    Y = Y.reshape(AL.shape)  # after this line, Y is the same shape as AL

    # Initializing the backpropagation
    dAL = - (np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))

    # Lth layer (SIGMOID -> LINEAR) gradients.
    current_cache = caches[L - 1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        linear_activation_backward(dAL, current_cache, activation="sigmoid")

    # Loop from l=L-2 to l=0
    for l in reversed(range(L - 1)):
        # lth layer: (RELU -> LINEAR) gradients.
        current_cache = caches[l]
        dA_prev_temp, dW_temp, db_temp = linear_activation_backward(grads["dA" + str(l + 1)],
                                                                    current_cache, activation="relu")
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp

    return grads


def L_layer_grads(X, Y, parameters):
    """One iteration of L_layer_model, without the update."""
    AL, caches = L_model_forward(X, parameters)
    cost = compute_cost(AL, Y)
    grads = L_model_backward(AL, Y, caches)
    return cost, grads


def forward_propagation(X, parameters):
    W1 = parameters["W1"]
    b1 = parameters["b1"]
    W2 = parameters["W2"]
    b2 = parameters["b2"]

    Z1 = np.dot(W1, X) + b1
    A1 = np.tanh(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = sigmoid_lr(Z2)

    assert(A2.shape == (1, X.shape[1]))

    cache = {"Z1": Z1,
             "A1": A1,
             "Z2": Z2,
             "A2": A2}

    return A2, cache


def compute_cost_planar(A2, Y):
    m = Y.shape[1]  # number of examples
    logprobs = np.multiply(np.log(A2), Y) + np.multiply(np.log(1 - A2), 1 - Y)
    cost = - np.sum(logprobs) / m
    cost = float(np.squeeze(cost))
    return cost


def backward_propagation(parameters, cache, X, Y):
    m = X.shape[1]
    W2 = parameters["W2"]
    A1 = cache["A1"]
    A2 = cache["A2"]

    dZ2 = A2 - Y
    dW2 = (1 / m) * np.dot(dZ2, A1.T)
    db2 = (1 / m) * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = np.multiply(np.dot(W2.T, dZ2), 1 - np.power(A1, 2))
    dW1 = (1 / m) * np.dot(dZ1, X.T)
    db1 = (1 / m) * np.sum(dZ1, axis=1, keepdims=True)

    grads = {"dW1": dW1,
             "db1": db1,
             "dW2": dW2,
             "db2": db2}

    return grads


def planar_nn_grads(parameters, X, Y):
    A2, cache = forward_propagation(X, parameters)
    cost = compute_cost_planar(A2, Y)
    grads = backward_propagation(parameters, cache, X, Y)
    return cost, grads


def relu(x):
    s = np.maximum(0, x)
    return s


def forward_propagation_reg(X, parameters):
    """LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID"""
    W1 = parameters["W1"]
    b1 = parameters["b1"]
    W2 = parameters["W2"]
    b2 = parameters["b2"]
    W3 = parameters["W3"]
    b3 = parameters["b3"]

    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid_lr(Z3)

    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def compute_cost_with_regularization(A3, Y, parameters, lambd):
    m = Y.shape[1]
    W1 = parameters["W1"]
    W2 = parameters["W2"]
    W3 = parameters["W3"]

    cross_entropy_cost = compute_cost(A3, Y)  # This gives you the cross-entropy part of the cost
    L2_regularization_cost = lambd / (2 * m) * (np.sum(np.square(W1)) + np.sum(np.square(W2))
                                                 + np.sum(np.square(W3)))
    cost = cross_entropy_cost + L2_regularization_cost
    return cost


def backward_propagation_with_regularization(X, Y, cache, lambd):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T) + lambd / m * W3
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) + lambd / m * W2
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T) + lambd / m * W1
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)

    gradients = {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
                 "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
                 "dZ1": dZ1, "dW1": dW1, "db1": db1}
    return gradients


def model_l2_grads(X, Y, parameters, lambd=0.7):
    a3, cache = forward_propagation_reg(X, parameters)
    cost = compute_cost_with_regularization(a3, Y, parameters, lambd)
    grads = backward_propagation_with_regularization(X, Y, cache, lambd)
    return cost, grads


def forward_propagation_with_dropout(X, parameters, keep_prob, D1, D2):
    """D1, D2: the uniform numbers np.random.rand(A1.shape[0], A1.shape[1]) would give."""
    W1 = parameters["W1"]
    b1 = parameters["b1"]
    W2 = parameters["W2"]
    b2 = parameters["b2"]
    W3 = parameters["W3"]
    b3 = parameters["b3"]

    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    D1 = D1 < keep_prob            # Step 2: convert entries of D1 to 0 or 1
    A1 = A1 * D1                   # Step 3: shut down some neurons of A1
    A1 = A1 / keep_prob            # Step 4: scale the value of neurons that haven't been shut down
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    D2 = D2 < keep_prob
    A2 = A2 * D2
    A2 = A2 / keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid_lr(Z3)

    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def backward_propagation_with_dropout(X, Y, cache, keep_prob):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dA2 = dA2 * D2              # Step 1: Apply mask D2 to shut down the same neurons
    dA2 = dA2 / keep_prob       # Step 2: Scale the value of neurons that haven't been shut down
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T)
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dA1 = dA1 * D1
    dA1 = dA1 / keep_prob
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)

    gradients = {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
                 "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
                 "dZ1": dZ1, "dW1": dW1, "db1": db1}
    return gradients


def model_dropout_grads(X, Y, parameters, D1, D2, keep_prob=0.8):
    a3, cache = forward_propagation_with_dropout(X, parameters, keep_prob, D1, D2)
    cost = compute_cost(a3, Y)
    grads = backward_propagation_with_dropout(X, Y, cache, keep_prob)
    return cost, grads


def softmax_dl5(x):
    e_x = np.exp(x - np.max(x))
    return e_x / e_x.sum(axis=0)


def rnn_cell_forward(xt, a_prev, parameters):
    Wax = parameters["Wax"]
    Waa = parameters["Waa"]
    Wya = parameters["Wya"]
    ba = parameters["ba"]
    by = parameters["by"]

    a_next = np.tanh(np.dot(Waa, a_prev) + np.dot(Wax, xt) + ba)
    yt_pred = softmax_dl5(np.dot(Wya, a_next) + by)

    cache = (a_next, a_prev, xt, parameters)
    return a_next, yt_pred, cache


def rnn_forward_dl(x, a0, parameters):
    caches = []
    n_x, m, T_x = x.shape
    n_y, n_a = parameters["Wya"].shape

    a = np.zeros((n_a, m, T_x))
    y_pred = np.zeros((n_y, m, T_x))
    a_next = a0

    for t in range(T_x):
        xt = x[:, :, t]
        a_next, yt_pred, cache = rnn_cell_forward(xt, a_next, parameters)
        a[:, :, t] = a_next
        y_pred[:, :, t] = yt_pred
        caches.append(cache)

    caches = (caches, x)
    return a, y_pred, caches


def rnn_cell_backward(da_next, cache):
    (a_next, a_prev, xt, parameters) = cache
    Wax = parameters["Wax"]
    Waa = parameters["Waa"]

    dtanh = (1 - a_next ** 2) * da_next
    dxt = np.dot(Wax.T, dtanh)
    dWax = np.dot(dtanh, xt.T)
    da_prev = np.dot(Waa.T, dtanh)
    dWaa = np.dot(dtanh, a_prev.T)
    dba = np.sum(dtanh, axis=1, keepdims=True)

    gradients = {"dxt": dxt, "da_prev": da_prev, "dWax": dWax, "dWaa": dWaa, "dba": dba}
    return gradients


def rnn_backward_dl(da, caches):
    (caches, x) = caches
    (a1, a0, x1, parameters) = caches[0]
    n_a, m, T_x = da.shape
    n_x, m = x1.shape

    dx = np.zeros((n_x, m, T_x))
    dWax = np.zeros((n_a, n_x))
    dWaa = np.zeros((n_a, n_a))
    dba = np.zeros((n_a, 1))
    da0 = np.zeros((n_a, m))
    da_prevt = np.zeros((n_a, m))

    for t in list(range(T_x))[::-1]:
        gradients = rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])
        dxt, da_prevt, dWaxt, dWaat, dbat = gradients["dxt"], gradients["da_prev"], \
            gradients["dWax"], gradients["dWaa"], gradients["dba"]
        dx[:, :, t] = dxt
        dWax += dWaxt
        dWaa += dWaat
        dba += dbat

    da0 = da_prevt
    gradients = {"dx": dx, "da0": da0, "dWax": dWax, "dWaa": dWaa, "dba": dba}
    return gradients


def dlai_rnn_grads(x, a0, parameters, da):
    a, y_pred, caches = rnn_forward_dl(x, a0, parameters)
    gradients = rnn_backward_dl(da, caches)
    return a, gradients


# =============================================================================================
# d2l-style GRU step (forward and backward by hand)
# =============================================================================================

def sigmoid(z):
    """The sigmoid function."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    """Derivative of the sigmoid function."""
    return sigmoid(z) * (1 - sigmoid(z))


def gru_step_grads(X, H, params, dH_new):
    W_xz, W_hz, b_z = params["W_xz"], params["W_hz"], params["b_z"]
    W_xr, W_hr, b_r = params["W_xr"], params["W_hr"], params["b_r"]
    W_xh, W_hh, b_h = params["W_xh"], params["W_hh"], params["b_h"]
    # forward
    Z = sigmoid(X @ W_xz + H @ W_hz + b_z)
    R = sigmoid(X @ W_xr + H @ W_hr + b_r)
    H_tilda = np.tanh(X @ W_xh + (R * H) @ W_hh + b_h)
    H_new = Z * H + (1 - Z) * H_tilda
    # backward
    dZ = dH_new * (H - H_tilda)
    dH_tilda = dH_new * (1 - Z)
    dH = dH_new * Z
    da_h = dH_tilda * (1 - H_tilda ** 2)
    dRH = da_h @ W_hh.T
    dR = dRH * H
    dH += dRH * R
    da_r = dR * R * (1 - R)
    da_z = dZ * Z * (1 - Z)
    grads = {
        "W_xz": X.T @ da_z, "W_hz": H.T @ da_z, "b_z": da_z.sum(axis=0),
        "W_xr": X.T @ da_r, "W_hr": H.T @ da_r, "b_r": da_r.sum(axis=0),
        "W_xh": X.T @ da_h, "W_hh": (R * H).T @ da_h, "b_h": da_h.sum(axis=0),
    }
    dH += da_z @ W_hz.T + da_r @ W_hr.T
    return H_new, grads, dH


# =============================================================================================
# Karpathy's min-char-rnn
# =============================================================================================

vocab_size = 5
hidden_size = 4


def lossFun(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """
    inputs,targets are both list of integers.
    hprev is Hx1 array of initial hidden state
    returns the loss, gradients on model parameters, and last hidden state
    """
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    # forward pass
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))  # encode in 1-of-k representation
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)  # hidden state
        ys[t] = np.dot(Why, hs[t]) + by  # unnormalized log probabilities for next chars
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))  # probabilities for next chars
        loss += -np.log(ps[t][targets[t], 0])  # softmax (cross-entropy loss)
    # backward pass: compute gradients going backwards
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1  # backprop into y
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = (1 - hs[t] * hs[t]) * dh  # backprop through tanh nonlinearity
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
        np.clip(dparam, -5, 5, out=dparam)  # clip to mitigate exploding gradients
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


# =============================================================================================
# WildML "RNN tutorial": RNNNumpy with truncated BPTT
# =============================================================================================

def softmax_wildml(x):
    xt = np.exp(x - np.max(x))
    return xt / np.sum(xt)


class RNNNumpy:

    def __init__(self, word_dim, hidden_dim=4, bptt_truncate=4, seed=0):
        rng = np.random.RandomState(seed)
        self.word_dim = word_dim
        self.hidden_dim = hidden_dim
        self.bptt_truncate = bptt_truncate
        self.U = rng.uniform(-np.sqrt(1. / word_dim), np.sqrt(1. / word_dim), (hidden_dim, word_dim))
        self.V = rng.uniform(-np.sqrt(1. / hidden_dim), np.sqrt(1. / hidden_dim), (word_dim, hidden_dim))
        self.W = rng.uniform(-np.sqrt(1. / hidden_dim), np.sqrt(1. / hidden_dim), (hidden_dim, hidden_dim))

    def forward_propagation(self, x):
        T = len(x)
        s = np.zeros((T + 1, self.hidden_dim))
        s[-1] = np.zeros(self.hidden_dim)
        o = np.zeros((T, self.word_dim))
        for t in np.arange(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W.dot(s[t - 1]))
            o[t] = softmax_wildml(self.V.dot(s[t]))
        return [o, s]

    def bptt(self, x, y):
        T = len(y)
        o, s = self.forward_propagation(x)
        dLdU = np.zeros(self.U.shape)
        dLdV = np.zeros(self.V.shape)
        dLdW = np.zeros(self.W.shape)
        delta_o = o
        delta_o[np.arange(len(y)), y] -= 1.
        for t in np.arange(T)[::-1]:
            dLdV += np.outer(delta_o[t], s[t].T)
            delta_t = self.V.T.dot(delta_o[t]) * (1 - (s[t] ** 2))
            for bptt_step in np.arange(max(0, t - self.bptt_truncate), t + 1)[::-1]:
                dLdW += np.outer(delta_t, s[bptt_step - 1])
                dLdU[:, x[bptt_step]] += delta_t
                delta_t = self.W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
        return [dLdU, dLdV, dLdW]


# =============================================================================================
# Nielsen, "Neural Networks and Deep Learning": network.py and network2.py
# =============================================================================================

class Network(object):

    def __init__(self, sizes, seed=0):
        rng = np.random.RandomState(seed)
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [rng.randn(y, 1) for y in sizes[1:]]
        self.weights = [rng.randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        """Return the output of the network if ``a`` is input."""
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def backprop(self, x, y):
        """Return a tuple ``(nabla_b, nabla_w)`` representing the
        gradient for the cost function C_x."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        # feedforward
        activation = x
        activations = [x]  # list to store all the activations, layer by layer
        zs = []  # list to store all the z vectors, layer by layer
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        # backward pass
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        # l = 1 means the last layer of neurons, l = 2 the second-last, and so on
        for l in range(2, self.num_layers):
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return (nabla_b, nabla_w)

    def mini_batch_gradient(self, mini_batch):
        """The averaged gradient update_mini_batch steps along."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        return ([nw / len(mini_batch) for nw in nabla_w],
                [nb / len(mini_batch) for nb in nabla_b])

    def cost_derivative(self, output_activations, y):
        """Return the vector of partial derivatives \\partial C_x /
        \\partial a for the output activations."""
        return (output_activations - y)


class QuadraticCost(object):

    @staticmethod
    def fn(a, y):
        return 0.5 * np.linalg.norm(a - y) ** 2

    @staticmethod
    def delta(z, a, y):
        return (a - y) * sigmoid_prime(z)


class CrossEntropyCost(object):

    @staticmethod
    def fn(a, y):
        return np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a)))

    @staticmethod
    def delta(z, a, y):
        return (a - y)


class Network2(object):

    def __init__(self, sizes, cost=CrossEntropyCost, seed=0):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.default_weight_initializer(np.random.RandomState(seed))
        self.cost = cost

    def default_weight_initializer(self, rng):
        self.biases = [rng.randn(y, 1) for y in self.sizes[1:]]
        self.weights = [rng.randn(y, x) / np.sqrt(x)
                        for x, y in zip(self.sizes[:-1], self.sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (self.cost).delta(zs[-1], activations[-1], y)
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return (nabla_b, nabla_w)

    def total_cost_and_gradient(self, data, lmbda):
        """The L2-regularised cost over ``data`` and its gradient (w.r.t. weights, biases)."""
        cost = 0.0
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in data:
            a = self.feedforward(x)
            cost += self.cost.fn(a, y) / len(data)
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        cost += 0.5 * (lmbda / len(data)) * sum(np.linalg.norm(w) ** 2 for w in self.weights)
        nabla_w = [nw / len(data) + (lmbda / len(data)) * w for w, nw in zip(self.weights, nabla_w)]
        nabla_b = [nb / len(data) for nb in nabla_b]
        return cost, nabla_w, nabla_b


# =============================================================================================
# "Neural Networks from Scratch" (nnfs): layer objects with forward / backward
# =============================================================================================

class Layer_Dense:

    def __init__(self, n_inputs, n_neurons, weight_regularizer_l2=0, seed=0):
        rng = np.random.RandomState(seed)
        self.weights = 0.5 * rng.randn(n_inputs, n_neurons)
        self.biases = np.zeros((1, n_neurons))
        self.weight_regularizer_l2 = weight_regularizer_l2

    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.dot(inputs, self.weights) + self.biases

    def backward(self, dvalues):
        self.dweights = np.dot(self.inputs.T, dvalues)
        self.dbiases = np.sum(dvalues, axis=0, keepdims=True)
        if self.weight_regularizer_l2 > 0:
            self.dweights += 2 * self.weight_regularizer_l2 * self.weights
        self.dinputs = np.dot(dvalues, self.weights.T)


class Activation_ReLU:

    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)

    def backward(self, dvalues):
        self.dinputs = dvalues.copy()
        self.dinputs[self.inputs <= 0] = 0


class Activation_Softmax:

    def forward(self, inputs):
        self.inputs = inputs
        exp_values = np.exp(inputs - np.max(inputs, axis=1, keepdims=True))
        probabilities = exp_values / np.sum(exp_values, axis=1, keepdims=True)
        self.output = probabilities

    def backward(self, dvalues):
        self.dinputs = np.empty_like(dvalues)
        for index, (single_output, single_dvalues) in enumerate(zip(self.output, dvalues)):
            single_output = single_output.reshape(-1, 1)
            jacobian_matrix = np.diagflat(single_output) - np.dot(single_output, single_output.T)
            self.dinputs[index] = np.dot(jacobian_matrix, single_dvalues)


class Activation_Sigmoid:

    def forward(self, inputs):
        self.inputs = inputs
        self.output = 1 / (1 + np.exp(-inputs))

    def backward(self, dvalues):
        self.dinputs = dvalues * (1 - self.output) * self.output


class Loss:

    def regularization_loss(self, layer):
        regularization_loss = 0
        if layer.weight_regularizer_l2 > 0:
            regularization_loss += layer.weight_regularizer_l2 * np.sum(layer.weights * layer.weights)
        return regularization_loss

    def calculate(self, output, y):
        sample_losses = self.forward(output, y)
        data_loss = np.mean(sample_losses)
        return data_loss


class Loss_CategoricalCrossentropy(Loss):

    def forward(self, y_pred, y_true):
        samples = len(y_pred)
        y_pred_clipped = np.clip(y_pred, 1e-7, 1 - 1e-7)
        if len(y_true.shape) == 1:
            correct_confidences = y_pred_clipped[range(samples), y_true]
        elif len(y_true.shape) == 2:
            correct_confidences = np.sum(y_pred_clipped * y_true, axis=1)
        negative_log_likelihoods = -np.log(correct_confidences)
        return negative_log_likelihoods

    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        labels = len(dvalues[0])
        if len(y_true.shape) == 1:
            y_true = np.eye(labels)[y_true]
        self.dinputs = -y_true / dvalues
        self.dinputs = self.dinputs / samples


class Activation_Softmax_Loss_CategoricalCrossentropy():

    def __init__(self):
        self.activation = Activation_Softmax()
        self.loss = Loss_CategoricalCrossentropy()

    def forward(self, inputs, y_true):
        self.activation.forward(inputs)
        self.output = self.activation.output
        return self.loss.calculate(self.output, y_true)

    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        if len(y_true.shape) == 2:
            y_true = np.argmax(y_true, axis=1)
        self.dinputs = dvalues.copy()
        self.dinputs[range(samples), y_true] -= 1
        self.dinputs = self.dinputs / samples


class Loss_BinaryCrossentropy(Loss):

    def forward(self, y_pred, y_true):
        y_pred_clipped = np.clip(y_pred, 1e-7, 1 - 1e-7)
        sample_losses = -(y_true * np.log(y_pred_clipped) + (1 - y_true) * np.log(1 - y_pred_clipped))
        sample_losses = np.mean(sample_losses, axis=-1)
        return sample_losses

    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        outputs = len(dvalues[0])
        clipped_dvalues = np.clip(dvalues, 1e-7, 1 - 1e-7)
        self.dinputs = -(y_true / clipped_dvalues - (1 - y_true) / (1 - clipped_dvalues)) / outputs
        self.dinputs = self.dinputs / samples


def nnfs_train_step(dense1, activation1, dense2, loss_activation, X, y):
    """One forward and backward pass of the chapter-10 spiral-data classifier."""
    dense1.forward(X)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    loss = loss_activation.forward(dense2.output, y)

    loss_activation.backward(loss_activation.output, y)
    dense2.backward(loss_activation.dinputs)
    activation1.backward(dense2.dinputs)
    dense1.backward(activation1.dinputs)
    return loss, dense1.dweights, dense1.dbiases, dense2.dweights, dense2.dbiases


def nnfs_softmax_then_loss(dense1, activation1, loss_function, X, y):
    """Softmax and categorical cross-entropy as separate objects (the slow Jacobian path)."""
    dense1.forward(X)
    activation1.forward(dense1.output)
    loss = loss_function.calculate(activation1.output, y)

    loss_function.backward(activation1.output, y)
    activation1.backward(loss_function.dinputs)
    dense1.backward(activation1.dinputs)
    return loss, dense1.dweights, dense1.dbiases


def nnfs_binary_l2_step(dense1, activation1, dense2, activation2, loss_function, X, y):
    """Binary logistic regression head with an L2 weight regulariser on the first layer."""
    dense1.forward(X)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    activation2.forward(dense2.output)
    data_loss = loss_function.calculate(activation2.output, y)
    regularization_loss = loss_function.regularization_loss(dense1) + \
        loss_function.regularization_loss(dense2)
    loss = data_loss + regularization_loss

    loss_function.backward(activation2.output, y)
    activation2.backward(loss_function.dinputs)
    dense2.backward(activation2.dinputs)
    activation1.backward(dense2.dinputs)
    dense1.backward(activation1.dinputs)
    return loss, [dense1.dweights, dense1.dbiases, dense2.dweights, dense2.dbiases]


# =============================================================================================
# Restricted Boltzmann machine: one CD-1 update (Hinton's practical guide)
# =============================================================================================

def rbm_cd1_update(W, vbias, hbias, v0, rand_h0, rand_v1):
    """rand_h0, rand_v1: the uniform numbers np.random.rand would give for the two samples."""
    # positive phase
    ph0 = sigmoid(np.dot(v0, W) + hbias)
    h0 = (ph0 > rand_h0).astype(float)
    # negative phase: reconstruct, then hidden probabilities again
    pv1 = sigmoid(np.dot(h0, W.T) + vbias)
    v1 = (pv1 > rand_v1).astype(float)
    ph1 = sigmoid(np.dot(v1, W) + hbias)
    n = v0.shape[0]
    dW = (np.dot(v0.T, ph0) - np.dot(v1.T, ph1)) / n
    dvbias = np.mean(v0 - v1, axis=0)
    dhbias = np.mean(ph0 - ph1, axis=0)
    recon_error = np.sum((v0 - pv1) ** 2) / n
    return dW, dvbias, dhbias, recon_error


# =============================================================================================
# UFLDL sparse autoencoder (ported to NumPy)
# =============================================================================================

def sparse_autoencoder_cost(theta, visible_size, hidden_size, lambda_, sparsity_param, beta, data):
    # The input theta is a vector (because minFunc expects the parameters to be a vector).
    W1 = theta[0:hidden_size * visible_size].reshape(hidden_size, visible_size)
    W2 = theta[hidden_size * visible_size:2 * hidden_size * visible_size].reshape(visible_size, hidden_size)
    b1 = theta[2 * hidden_size * visible_size:2 * hidden_size * visible_size + hidden_size]
    b2 = theta[2 * hidden_size * visible_size + hidden_size:]

    m = data.shape[1]
    # Forward propagation
    z2 = W1.dot(data) + np.tile(b1, (m, 1)).transpose()
    a2 = sigmoid(z2)
    z3 = W2.dot(a2) + np.tile(b2, (m, 1)).transpose()
    h = sigmoid(z3)

    # Sparsity
    rho_hat = np.sum(a2, axis=1) / m
    rho = np.tile(sparsity_param, hidden_size)

    cost = np.sum((h - data) ** 2) / (2 * m) + \
        (lambda_ / 2) * (np.sum(W1 ** 2) + np.sum(W2 ** 2)) + \
        beta * np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))

    # Backprop
    sparsity_delta = np.tile(- rho / rho_hat + (1 - rho) / (1 - rho_hat), (m, 1)).transpose()
    delta3 = -(data - h) * sigmoid_prime(z3)
    delta2 = (W2.transpose().dot(delta3) + beta * sparsity_delta) * sigmoid_prime(z2)
    W1grad = delta2.dot(data.transpose()) / m + lambda_ * W1
    W2grad = delta3.dot(a2.transpose()) / m + lambda_ * W2
    b1grad = np.sum(delta2, axis=1) / m
    b2grad = np.sum(delta3, axis=1) / m

    # After computing the cost and gradient, convert the gradients back to a vector format
    grad = np.concatenate((W1grad.reshape(hidden_size * visible_size),
                           W2grad.reshape(hidden_size * visible_size),
                           b1grad.reshape(hidden_size),
                           b2grad.reshape(visible_size)))
    return cost, grad


# =============================================================================================
# Andrew Ng's Machine Learning (ex1, ex2, ex4 in Python) and the ML Specialization
# =============================================================================================

def gradient_univariate(theta, x, y):
    m = len(y)
    h = theta[0] + theta[1] * x
    J = 1 / (2 * m) * np.sum((h - y) ** 2)
    grad = np.array([np.sum(h - y) / m, np.sum((h - y) * x) / m])
    return J, grad


def cost_function_reg(theta, X, y, lambda_):
    m = y.size
    X = np.concatenate([np.ones((m, 1)), X], axis=1)
    J = 0
    grad = np.zeros(theta.shape)
    h = sigmoid(X.dot(theta.T))
    temp = theta.copy()
    temp[0] = 0  # theta_0 is not regularised
    J = (1 / m) * np.sum(-y.dot(np.log(h)) - (1 - y).dot(np.log(1 - h))) \
        + (lambda_ / (2 * m)) * np.sum(np.square(temp))
    grad = (1 / m) * (h - y).dot(X)
    grad = grad + (lambda_ / m) * temp
    return J, grad


def sigmoid_gradient(z):
    g = np.zeros(z.shape)
    g = sigmoid(z) * (1 - sigmoid(z))
    return g


def nn_cost_function(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):
    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, (input_layer_size + 1)))
    Theta2 = np.reshape(nn_params[(hidden_layer_size * (input_layer_size + 1)):],
                        (num_labels, (hidden_layer_size + 1)))
    m = y.size
    J = 0
    Theta1_grad = np.zeros(Theta1.shape)
    Theta2_grad = np.zeros(Theta2.shape)

    a1 = np.concatenate([np.ones((m, 1)), X], axis=1)
    a2 = sigmoid(a1.dot(Theta1.T))
    a2 = np.concatenate([np.ones((a2.shape[0], 1)), a2], axis=1)
    a3 = sigmoid(a2.dot(Theta2.T))

    y_matrix = y.reshape(-1)
    y_matrix = np.eye(num_labels)[y_matrix]

    temp1 = Theta1
    temp2 = Theta2
    reg_term = (lambda_ / (2 * m)) * (np.sum(np.square(temp1[:, 1:])) + np.sum(np.square(temp2[:, 1:])))
    J = (-1 / m) * np.sum((np.log(a3) * y_matrix) + np.log(1 - a3) * (1 - y_matrix)) + reg_term

    delta_3 = a3 - y_matrix
    delta_2 = delta_3.dot(Theta2)[:, 1:] * sigmoid_gradient(a1.dot(Theta1.T))
    Delta1 = delta_2.T.dot(a1)
    Delta2 = delta_3.T.dot(a2)

    Theta1_grad = (1 / m) * Delta1
    Theta1_grad[:, 1:] = Theta1_grad[:, 1:] + (lambda_ / m) * Theta1[:, 1:]
    Theta2_grad = (1 / m) * Delta2
    Theta2_grad[:, 1:] = Theta2_grad[:, 1:] + (lambda_ / m) * Theta2[:, 1:]

    grad = np.concatenate([Theta1_grad.ravel(), Theta2_grad.ravel()])
    return J, grad


def compute_gradient_linear_reg(X, y, w, b, lambda_=1):
    """Gradient of the regularised linear-regression cost, with loops."""
    m, n = X.shape
    dj_dw = np.zeros((n,))
    dj_db = 0.
    for i in range(m):
        err = (np.dot(X[i], w) + b) - y[i]
        for j in range(n):
            dj_dw[j] = dj_dw[j] + err * X[i, j]
        dj_db = dj_db + err
    dj_dw = dj_dw / m
    dj_db = dj_db / m
    for j in range(n):
        dj_dw[j] = dj_dw[j] + (lambda_ / m) * w[j]
    return dj_db, dj_dw


def compute_cost_logistic_reg(X, y, w, b, lambda_=1):
    m, n = X.shape
    cost = 0.
    for i in range(m):
        z_i = np.dot(X[i], w) + b
        f_wb_i = sigmoid(z_i)
        cost += -y[i] * np.log(f_wb_i) - (1 - y[i]) * np.log(1 - f_wb_i)
    cost = cost / m
    reg_cost = 0
    for j in range(n):
        reg_cost += (w[j] ** 2)
    reg_cost = (lambda_ / (2 * m)) * reg_cost
    return cost + reg_cost


def compute_gradient_logistic_reg(X, y, w, b, lambda_=1):
    m, n = X.shape
    dj_dw = np.zeros((n,))
    dj_db = 0.0
    for i in range(m):
        f_wb_i = sigmoid(np.dot(X[i], w) + b)
        err_i = f_wb_i - y[i]
        for j in range(n):
            dj_dw[j] = dj_dw[j] + err_i * X[i, j]
        dj_db = dj_db + err_i
    dj_dw = dj_dw / m
    dj_db = dj_db / m
    for j in range(n):
        dj_dw[j] = dj_dw[j] + (lambda_ / m) * w[j]
    return dj_db, dj_dw


def logistic_cost_and_gradient(X, y, w, b, lambda_=1):
    cost = compute_cost_logistic_reg(X, y, w, b, lambda_)
    dj_db, dj_dw = compute_gradient_logistic_reg(X, y, w, b, lambda_)
    return cost, dj_db, dj_dw


def ridge_gradient(w, b, X, y, alpha=0.1):
    """Standardise the features (sample std, ddof=1), then the ridge cost and its gradient."""
    mu = np.mean(X, axis=0)
    sigma = np.std(X, axis=0, ddof=1)
    X_norm = (X - mu) / sigma
    m = X_norm.shape[0]
    y_pred = X_norm @ w + b
    residual = y_pred - y
    cost = (residual @ residual) / (2 * m) + alpha / 2 * np.sum(w ** 2)
    dw = X_norm.T @ residual / m + alpha * w
    db = residual.mean()
    return cost, dw, db


# =============================================================================================
# Karpathy's "Pong from pixels" policy gradient
# =============================================================================================

def discount_rewards(r, gamma):
    """take 1D float array of rewards and compute discounted reward"""
    discounted_r = np.zeros_like(r)
    running_add = 0
    for t in reversed(range(0, r.size)):
        if r[t] != 0:
            running_add = 0  # reset the sum, since this was a game boundary (pong specific!)
        running_add = running_add * gamma + r[t]
        discounted_r[t] = running_add
    return discounted_r


def policy_forward(model, x):
    h = np.dot(model['W1'], x)
    h[h < 0] = 0  # ReLU nonlinearity
    logp = np.dot(model['W2'], h)
    p = sigmoid(logp)
    return p, h  # return probability of taking action 2, and hidden state


def policy_backward(model, epx, eph, epdlogp):
    """backward pass. (eph is array of intermediate hidden states)"""
    dW2 = np.dot(eph.T, epdlogp).ravel()
    dh = np.outer(epdlogp, model['W2'])
    dh[eph <= 0] = 0  # backpro prelu
    dW1 = np.dot(dh.T, epx)
    return {'W1': dW1, 'W2': dW2}


def policy_gradient_episode(model, observations, actions, rewards, gamma=0.99):
    xs, hs, dlogps, drs = [], [], [], []
    for x, action in zip(observations, actions):
        aprob, h = policy_forward(model, x)
        y = 1 if action == 2 else 0  # a "fake label"
        xs.append(x)  # observation
        hs.append(h)  # hidden state
        dlogps.append(y - aprob)  # grad that encourages the action that was taken to be taken
    for reward in rewards:
        drs.append(reward)
    # stack together all inputs, hidden states, action gradients, and rewards for this episode
    epx = np.vstack(xs)
    eph = np.vstack(hs)
    epdlogp = np.vstack(dlogps)
    epr = np.vstack(drs)
    # compute the discounted reward backwards through time
    discounted_epr = discount_rewards(epr, gamma)
    # standardize the rewards to be unit normal (helps control the gradient estimator variance)
    discounted_epr -= np.mean(discounted_epr)
    discounted_epr /= np.std(discounted_epr)
    epdlogp *= discounted_epr  # modulate the gradient with advantage (PG magic happens right here.)
    grad = policy_backward(model, epx, eph, epdlogp)
    return grad


# =============================================================================================
# CS224n word2vec
# =============================================================================================

def softmax(x):
    """Row-wise (or vector) softmax; rebinds its own parameter as tutorials do."""
    if len(x.shape) > 1:
        x = x - np.max(x, axis=1, keepdims=True)
        x = np.exp(x)
        x = x / np.sum(x, axis=1, keepdims=True)
    else:
        x = x - np.max(x)
        x = np.exp(x)
        x = x / np.sum(x)
    return x


def naive_softmax_loss_and_gradient(centerWordVec, outsideWordIdx, outsideVectors):
    y_hat = softmax(np.dot(outsideVectors, centerWordVec))
    loss = -np.log(y_hat[outsideWordIdx])
    delta = y_hat.copy()
    delta[outsideWordIdx] -= 1
    gradCenterVec = np.dot(outsideVectors.T, delta)
    gradOutsideVecs = np.outer(delta, centerWordVec)
    return loss, gradCenterVec, gradOutsideVecs


def neg_sampling_loss_and_gradient(centerWordVec, outsideWordIdx, outsideVectors, negSampleWordIndices):
    indices = [outsideWordIdx] + negSampleWordIndices
    gradCenterVec = np.zeros(centerWordVec.shape)
    gradOutsideVecs = np.zeros(outsideVectors.shape)

    u_o = outsideVectors[outsideWordIdx]
    z = sigmoid(np.dot(u_o, centerWordVec))
    loss = -np.log(z)
    gradCenterVec += u_o * (z - 1)
    gradOutsideVecs[outsideWordIdx] = centerWordVec * (z - 1)

    for i in range(len(negSampleWordIndices)):
        neg_id = indices[1 + i]
        u_k = outsideVectors[neg_id]
        z = sigmoid(-np.dot(u_k, centerWordVec))
        loss -= np.log(z)
        gradCenterVec -= u_k * (z - 1)
        gradOutsideVecs[neg_id] -= centerWordVec * (z - 1)
    return loss, gradCenterVec, gradOutsideVecs


def skipgram(currentCenterWordIdx, outsideWordIndices, centerWordVectors, outsideVectors, negSamples):
    loss = 0.0
    gradCenterVecs = np.zeros(centerWordVectors.shape)
    gradOutsideVectors = np.zeros(outsideVectors.shape)
    centerWordVec = centerWordVectors[currentCenterWordIdx]
    for k, outsideWordIdx in enumerate(outsideWordIndices):
        l, gradCenter, gradOutside = neg_sampling_loss_and_gradient(
            centerWordVec, outsideWordIdx, outsideVectors, negSamples[k])
        loss += l
        gradCenterVecs[currentCenterWordIdx] += gradCenter
        gradOutsideVectors += gradOutside
    return loss, gradCenterVecs, gradOutsideVectors


def cbow_window_grads(W_in, W_out):
    """CBOW on one window: context words [0, 2, 2], centre word 1."""
    context = W_in[[0, 2, 2]]
    h = np.mean(context, axis=0)
    u = np.dot(W_out, h)
    e = np.exp(u - np.max(u))
    y_pred = e / np.sum(e)
    loss = -np.log(y_pred[1])
    EI = y_pred.copy()
    EI[1] -= 1
    dW_out = np.outer(EI, h)
    dh = np.dot(W_out.T, EI)
    dW_in = np.zeros_like(W_in)
    for idx in [0, 2, 2]:
        dW_in[idx] += dh / 3
    return loss, dW_in, dW_out


# =============================================================================================
# Assorted tutorials: softmax regression, activation variants, attention with einsum,
# average pooling with np.repeat, a monotone fit with np.cumsum
# =============================================================================================

def stable_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_regression_grads(W, b, X, y, reg=1e-3):
    num_classes = W.shape[1]
    m = X.shape[0]
    Y = (y[:, None] == np.arange(num_classes)).astype(float)  # one-hot
    probs = stable_softmax(X @ W + b)
    loss = -np.sum(Y * np.log(probs)) / m + 0.5 * reg * np.sum(W * W)
    dZ = (probs - Y) / m
    dW = X.T @ dZ + reg * W
    db = dZ.sum(axis=0)
    return loss, dW, db


def leaky_relu(z, alpha=0.01):
    return np.where(z > 0, z, alpha * z)


def softplus(z):
    return np.logaddexp(0, z)


def mlp_activation_variants(Ws, bs, X, Y, activations):
    """A per-layer list of activation names, chosen by if/elif in the loops."""
    A = X
    As, Zs = [X], []
    for W, b, act in zip(Ws, bs, activations):
        Z = A @ W + b
        if act == "tanh":
            A = np.tanh(Z)
        elif act == "sigmoid":
            A = sigmoid(Z)
        elif act == "leaky_relu":
            A = leaky_relu(Z)
        elif act == "softplus":
            A = softplus(Z)
        elif act == "linear":
            A = Z
        Zs.append(Z)
        As.append(A)
    m = X.shape[0]
    loss = 0.5 * np.sum((A - Y) ** 2) / m
    dA = (A - Y) / m
    dWs = [None] * len(Ws)
    dbs = [None] * len(Ws)
    for l in reversed(range(len(Ws))):
        Z, act = Zs[l], activations[l]
        if act == "tanh":
            dZ = dA * (1 - np.tanh(Z) ** 2)
        elif act == "sigmoid":
            dZ = dA * sigmoid(Z) * (1 - sigmoid(Z))
        elif act == "leaky_relu":
            dZ = dA * np.where(Z > 0, 1.0, 0.01)
        elif act == "softplus":
            dZ = dA * sigmoid(Z)
        elif act == "linear":
            dZ = dA
        dWs[l] = As[l].T @ dZ
        dbs[l] = dZ.sum(axis=0)
        dA = dZ @ Ws[l].T
    return loss, dWs, dbs


def attention_forward_backward(Wq, Wk, Wv, X, dout):
    """Single-head self-attention on a batch X (B, T, D), forward and backward with einsum."""
    Q = np.einsum('btd,dk->btk', X, Wq)
    K = np.einsum('btd,dk->btk', X, Wk)
    V = np.einsum('btd,dk->btk', X, Wv)
    d_k = Q.shape[-1]
    scores = np.einsum('bqk,btk->bqt', Q, K) / np.sqrt(d_k)
    A = np.exp(scores - scores.max(axis=-1, keepdims=True))
    A = A / A.sum(axis=-1, keepdims=True)
    out = np.einsum('bqt,btk->bqk', A, V)
    # backward
    dA = np.einsum('bqk,btk->bqt', dout, V)
    dV = np.einsum('bqt,bqk->btk', A, dout)
    dscores = A * (dA - np.sum(dA * A, axis=-1, keepdims=True))
    dscores /= np.sqrt(d_k)
    dQ = np.einsum('bqt,btk->bqk', dscores, K)
    dK = np.einsum('bqt,bqk->btk', dscores, Q)
    dWq = np.einsum('btd,btk->dk', X, dQ)
    dWk = np.einsum('btd,btk->dk', X, dK)
    dWv = np.einsum('btd,btk->dk', X, dV)
    return out, dWq, dWk, dWv


def avgpool_regression_grads(W, X, y, pool=2):
    """Linear features, 1-D average pooling, squared error; the pooling backward by np.repeat."""
    N = X.shape[0]
    h = X @ W
    pooled = h.reshape(N, -1, pool).mean(axis=2)
    diff = pooled - y
    loss = 0.5 * np.sum(diff ** 2) / N
    dpooled = diff / N
    dh = np.repeat(dpooled, pool, axis=1) / pool
    dW = X.T @ dh
    return loss, dW


def monotone_fit_grads(log_increments, start, y):
    """A monotone curve mu = start + cumsum(exp(log_increments)) fitted to y."""
    increments = np.exp(log_increments)
    mu = start + np.cumsum(increments)
    residual = mu - y
    loss = 0.5 * np.sum(residual ** 2)
    # d loss / d increments_k = sum_{t >= k} residual_t
    dincrements = np.cumsum(residual[::-1])[::-1]
    dlog = dincrements * increments
    dstart = np.sum(residual)
    return loss, dlog, dstart


# =============================================================================================
# Smaller pieces the courses write on their own (each shows one construct without the others)
# =============================================================================================

def layernorm_grads(x, gamma, beta, dout, eps=1e-5):
    """Layer normalisation forward and backward (CS231n assignment 2), per-sample statistics."""
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    std = np.sqrt(var + eps)
    x_hat = (x - mu) / std
    out = gamma * x_hat + beta
    D = x.shape[1]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dx = (1. / D) / std * (D * dx_hat - dx_hat.sum(axis=1, keepdims=True)
                           - x_hat * np.sum(dx_hat * x_hat, axis=1, keepdims=True))
    return out, dx, dgamma, dbeta


def word_embedding_grads(W, x, dout):
    """CS231n word_embedding_forward / word_embedding_backward in one function."""
    out = W[x, :]
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)
    return out, dW


def softmax_backward_jacobian(inputs, dvalues):
    """nnfs Activation_Softmax.forward then .backward, one sample's Jacobian at a time."""
    exp_values = np.exp(inputs - np.max(inputs, axis=1, keepdims=True))
    output = exp_values / np.sum(exp_values, axis=1, keepdims=True)
    dinputs = np.empty_like(dvalues)
    for index, (single_output, single_dvalues) in enumerate(zip(output, dvalues)):
        single_output = single_output.reshape(-1, 1)
        jacobian_matrix = np.diagflat(single_output) - np.dot(single_output, single_output.T)
        dinputs[index] = np.dot(jacobian_matrix, single_dvalues)
    return output, dinputs


def logistic_loss_logaddexp(w, b, X, y):
    """Logistic loss for labels y in {-1, +1}, written with np.logaddexp for stability."""
    m = X.shape[0]
    z = X.dot(w) + b
    loss = np.mean(np.logaddexp(0, -y * z))
    dz = -y * sigmoid(-y * z) / m
    dw = X.T.dot(dz)
    db = np.sum(dz)
    return loss, dw, db


def linear_classifier_loss(W, X, y=None, reg=0.0):
    """A linear softmax classifier: scores when y is None, else the loss and its gradient."""
    scores = X.dot(W)
    if y is None:
        return scores
    num_train = X.shape[0]
    scores = scores - np.max(scores, axis=1, keepdims=True)
    probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)
    loss = -np.mean(np.log(probs[np.arange(num_train), y])) + 0.5 * reg * np.sum(W * W)
    dscores = probs.copy()
    dscores[np.arange(num_train), y] -= 1
    dW = X.T.dot(dscores) / num_train + reg * W
    return loss, dW


def vanilla_rnn_bptt(Wxh, Whh, Why, X, Y):
    """A many-to-many RNN with squared error, hidden states kept in a list, BPTT backwards."""
    T = X.shape[0]
    H = Whh.shape[0]
    hs = [np.zeros(H)]
    ys = []
    for t in range(T):
        h = np.tanh(Wxh @ X[t] + Whh @ hs[-1])
        hs.append(h)
        ys.append(Why @ h)
    loss = 0.0
    for t in range(T):
        loss += 0.5 * np.sum((ys[t] - Y[t]) ** 2)
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dh_next = np.zeros(H)
    for t in list(range(T))[::-1]:
        dy = ys[t] - Y[t]
        dWhy += np.outer(dy, hs[t + 1])
        dh = Why.T @ dy + dh_next
        draw = (1 - hs[t + 1] ** 2) * dh
        dWxh += np.outer(draw, X[t])
        dWhh += np.outer(draw, hs[t])
        dh_next = Whh.T @ draw
    return loss, dWxh, dWhh, dWhy


def output_layer_grads(w, b, x, y):
    """Nielsen's output layer with the cross-entropy cost, its delta from the static method."""
    z = np.dot(w, x) + b
    a = sigmoid(z)
    delta = CrossEntropyCost.delta(z, a, y)
    return np.dot(delta, x.transpose()), delta


def hidden_activation_mlp(Ws, bs, X, Y, hidden="tanh"):
    """The hidden activation chosen by a string; the last layer linear; if/elif, no else."""
    L = len(Ws)
    A = X
    As, Zs = [X], []
    for l in range(L):
        Z = A @ Ws[l] + bs[l]
        if l < L - 1:
            if hidden == "tanh":
                A = np.tanh(Z)
            elif hidden == "relu":
                A = np.maximum(0, Z)
        elif l == L - 1:
            A = Z
        Zs.append(Z)
        As.append(A)
    m = X.shape[0]
    loss = 0.5 * np.sum((A - Y) ** 2) / m
    dA = (A - Y) / m
    dWs, dbs = [None] * L, [None] * L
    for l in reversed(range(L)):
        dZ = dA
        if l < L - 1:
            if hidden == "tanh":
                dZ = dA * (1 - As[l + 1] ** 2)
            elif hidden == "relu":
                dZ = dA * (Zs[l] > 0)
        dWs[l] = As[l].T @ dZ
        dbs[l] = dZ.sum(axis=0)
        dA = dZ @ Ws[l].T
    return loss, dWs, dbs


def clipped_linear_grads(W, b, X, Y):
    """Squared-error gradient of a linear layer, clipped in place as min-char-rnn does."""
    m = X.shape[0]
    err = X @ W + b - Y
    loss = 0.5 * np.sum(err ** 2) / m
    dW = X.T @ err / m
    db = err.sum(axis=0) / m
    for dparam in [dW, db]:
        np.clip(dparam, -5, 5, out=dparam)
    return loss, dW, db


# =============================================================================================
# CS231n layers.py: naive convolution and max pooling (loops over every output position)
# =============================================================================================

def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param['stride'], conv_param['pad']
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode='constant')
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    out[n, f, i, j] = np.sum(x_pad[n, :, hs:hs + HH, ws:ws + WW] * w[f]) + b[f]
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param['stride'], conv_param['pad']
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode='constant')
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.sum(dout, axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dw[f] += x_pad[n, :, hs:hs + HH, ws:ws + WW] * dout[n, f, i, j]
                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]
    dx = dx_pad[:, :, pad:-pad, pad:-pad]
    return dx, dw, db


def conv_grads(x, w, b, dout, conv_param):
    out, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)
    return out, dx, dw, db


def max_pool_grads(x, dout, pool_param):
    """max_pool_forward_naive and max_pool_backward_naive in one function."""
    pool_height, pool_width = pool_param['pool_height'], pool_param['pool_width']
    stride = pool_param['stride']
    N, C, H, W = x.shape
    H_out = 1 + (H - pool_height) // stride
    W_out = 1 + (W - pool_width) // stride
    out = np.zeros((N, C, H_out, W_out))
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride:i * stride + pool_height, j * stride:j * stride + pool_width]
                    out[n, c, i, j] = np.max(window)
                    idx = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + idx[0], j * stride + idx[1]] += dout[n, c, i, j]
    return out, dx
