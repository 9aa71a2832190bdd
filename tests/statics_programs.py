"""Programs for tests/test_statics.py: dicts, None, strings, keyword arguments, assert/raise.

Written the way course assignments write backprop (a dict of parameters, `loss(X, y=None,
reg=0.0)`, layer helpers returning `(out, cache)`, keys built with `'W' + str(l)`), not the
way rop's own examples do.  rop reads source through ``inspect``, so they live in a real file.
"""
# flake8: noqa

import numpy as np


# ----------------------------------------------------------------------------- a two-layer net

def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
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


def softmax_loss(x, y):
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


def two_layer_loss(params, X, y=None, reg=0.0):
    """A two-layer ReLU net's loss and gradient; the class scores when y is None."""
    W1, b1 = params['W1'], params['b1']
    W2, b2 = params['W2'], params['b2']
    h, cache1 = affine_forward(X, W1, b1)
    a, cache2 = relu_forward(h)
    scores, cache3 = affine_forward(a, W2, b2)
    if y is None:
        return scores
    loss, grads = 0, {}
    loss, dscores = softmax_loss(scores, y)
    loss += 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    da, grads['W2'], grads['b2'] = affine_backward(dscores, cache3)
    dh = relu_backward(da, cache2)
    dx, grads['W1'], grads['b1'] = affine_backward(dh, cache1)
    grads['W2'] += reg * W2
    grads['W1'] += reg * W1
    return loss, grads


# ----------------------------------------------------------------------------- an L-layer net

def sigmoid(Z):
    A = 1 / (1 + np.exp(-Z))
    cache = Z
    return A, cache


def relu(Z):
    A = np.maximum(0, Z)
    cache = Z
    return A, cache


def linear_forward(A, W, b):
    Z = np.dot(W, A) + b
    cache = (A, W, b)
    return Z, cache


def linear_activation_forward(A_prev, W, b, activation):
    if activation == "sigmoid":
        Z, linear_cache = linear_forward(A_prev, W, b)
        A, activation_cache = sigmoid(Z)
    elif activation == "relu":
        Z, linear_cache = linear_forward(A_prev, W, b)
        A, activation_cache = relu(Z)
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A_prev = A
        A, cache = linear_activation_forward(A_prev, parameters['W' + str(l)],
                                             parameters['b' + str(l)], activation="relu")
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters['W' + str(L)], parameters['b' + str(L)],
                                          activation="sigmoid")
    caches.append(cache)
    return AL, caches


def compute_cost(AL, Y):
    m = Y.shape[1]
    cost = (-1 / m) * np.sum(np.multiply(Y, np.log(AL)) + np.multiply(1 - Y, np.log(1 - AL)))
    cost = np.squeeze(cost)
    return cost


def relu_backward_dl(dA, cache):
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def sigmoid_backward(dA, cache):
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    dZ = dA * s * (1 - s)
    return dZ


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1. / m * np.dot(dZ, A_prev.T)
    db = 1. / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = relu_backward_dl(dA, activation_cache)
        dA_prev, dW, db = linear_backward(dZ, linear_cache)
    elif activation == "sigmoid":
        dZ = sigmoid_backward(dA, activation_cache)
        dA_prev, dW, db = linear_backward(dZ, linear_cache)
    return dA_prev, dW, db


def L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = - (np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    current_cache = caches[L - 1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        linear_activation_backward(dAL, current_cache, activation="sigmoid")
    for l in reversed(range(L - 1)):
        current_cache = caches[l]
        dA_prev_temp, dW_temp, db_temp = linear_activation_backward(grads["dA" + str(l + 1)],
                                                                    current_cache, activation="relu")
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def L_layer_gradients(parameters, X, Y):
    """Cost and gradients of an L-layer net as the deep-learning course writes it."""
    AL, caches = L_model_forward(X, parameters)
    cost = compute_cost(AL, Y)
    grads = L_model_backward(AL, Y, caches)
    return cost, grads


# ----------------------------------------------------------------------------- small ones

def propagate(w, b, X, Y):
    """Logistic regression: the gradients in a dict, then the cost."""
    m = X.shape[1]
    A = 1 / (1 + np.exp(-(np.dot(w.T, X) + b)))
    cost = -1 / m * np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    dw = 1 / m * np.dot(X, (A - Y).T)
    db = 1 / m * np.sum(A - Y)
    assert dw.shape == w.shape
    grads = {"dw": dw, "db": db}
    return grads, cost


def fstring_layers(params, X, T, act="tanh"):
    """Keys as f-strings, a loop over .items() and a string option."""
    n_layers = len(params) // 2
    hs = [X]
    for l in range(1, n_layers + 1):
        z = params[f"W{l}"] @ hs[-1] + params[f"b{l}"][:, None]
        if act == "tanh" and l < n_layers:
            hs.append(np.tanh(z))
        else:
            hs.append(z)
    d = (hs[-1] - T) / X.shape[1]
    grads = {}
    for l in range(n_layers, 0, -1):
        grads[f"W{l}"] = d @ hs[l - 1].T
        grads[f"b{l}"] = d.sum(axis=1)
        if l > 1:
            d = (params[f"W{l}"].T @ d) * (1.0 - hs[l - 1] ** 2)
    out = {}
    for k, g in grads.items():
        out[k] = g + 1e-3 * params[k]
    return out


def with_checks(W, x, scale=None, verbose=False):
    """assert and raise stay runtime checks; None and bool options pick the code."""
    if x.ndim != 1:
        raise ValueError("x must be a vector")
    assert W.shape[1] == x.shape[0], "W and x do not fit"
    y = np.tanh(W @ x)
    if scale is not None:
        y = scale * y
    if verbose:
        y = y + 0.0
    return W.T @ (y * (1.0 - y ** 2)) if scale is None else y


def batchnorm(x, gamma, beta, mode="train", eps=1e-5):
    """A string chooses the branch, as in a course's batch-norm layer."""
    if mode == "train":
        mu = x.mean(axis=0)
        var = ((x - mu) ** 2).mean(axis=0)
    elif mode == "test":
        mu = np.zeros(x.shape[1])
        var = np.ones(x.shape[1])
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta


def keeps_dtype(W, b, X):
    """Dtypes asked for as courses ask: astype(x.dtype, copy=False), assert on .dtype."""
    h = np.tanh(W @ X + b[:, None])
    out = h.astype(h.dtype, copy=False)        # h itself: the write below changes h too
    out[0] = out[0] * 2.0
    g = (h * h).sum(axis=0).astype(W.dtype)    # W is differentiated: float64
    assert out.dtype == np.float64 and g.dtype == float, "not float64"
    if b.dtype != np.float64:
        raise TypeError("b must be float64")
    return h.sum() + g.sum(), W.T @ (1.0 - h ** 2)


def char_rnn_loss(inputs, targets, hprev, Wxh, Whh, Why):
    """Dicts keyed by the time step, as min-char-rnn writes them: the keys come from a loop
    over range(len(inputs)), so each length of `inputs` compiles its own (unrolled) code."""
    xs, hs, ps = {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((Wxh.shape[1], 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]))
        y = np.dot(Why, hs[t])
        ps[t] = np.exp(y) / np.sum(np.exp(y))
        loss += -np.log(ps[t][targets[t], 0])
    return loss, hs[len(inputs) - 1]


# ----------------------------------------------------------------------------- refused

def dtype_of_data(W, labels):
    return (W * 2.0).astype(labels.dtype)


def astype_no_copy_of_data(W, X):
    Y = X.astype(float, copy=False)
    Y[0] = 0.0
    return W @ Y

def store_into_dict_argument(params, X):
    params['W1'] = params['W1'] * 2.0
    return params['W1'] @ X


def key_from_run_time_value(params, X):
    out = 0.0
    for t in range(X.shape[0]):
        out = out + params['W' + str(t)]
    return out


def key_on_one_path(params, X):
    grads = {}
    if X[0, 0] > 0:
        grads['W'] = params['W'] * X[0, 0]
    return grads


def missing_key(params, X):
    return params['W3'] @ X


def helper_with_defaults(x, scale=2.0, shift=0.0):
    return scale * np.tanh(x) + shift


def calls_helper_without_argument(W):
    return helper_with_defaults()


def calls_helper_with_unknown_keyword(W):
    return helper_with_defaults(W, slope=2.0)


def calls_helper_with_keywords(W):
    return helper_with_defaults(W, shift=1.0) * helper_with_defaults(x=W, scale=0.5)


# ----------------------------------------------------------------------------- classes

def sigmoid_n(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid_n(z) * (1 - sigmoid_n(z))


class CrossEntropyCost(object):

    @staticmethod
    def fn(a, y):
        return np.sum(-y * np.log(a) - (1 - y) * np.log(1 - a))

    @staticmethod
    def delta(z, a, y):
        return (a - y)


class Network(object):
    """A network object as the online book writes it: lists of per-layer arrays as attributes,
    a cost class, backprop a method reading them."""

    def __init__(self, sizes, cost=CrossEntropyCost, seed=0):
        rng = np.random.default_rng(seed)
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)) / np.sqrt(x)
                        for x, y in zip(sizes[:-1], sizes[1:])]
        self.cost = cost

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid_n(np.dot(w, a) + b)
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
            activation = sigmoid_n(z)
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

    def total_cost(self, x, y):
        a = self.feedforward(x)
        return self.cost.fn(a, y)
# layer objects made inside the function, whose forward stores what backward reads

class Layer_Dense:
    def __init__(self, weights, biases):
        self.weights = weights
        self.biases = biases
    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.dot(inputs, self.weights) + self.biases
    def backward(self, dvalues):
        self.dweights = np.dot(self.inputs.T, dvalues)
        self.dbiases = np.sum(dvalues, axis=0, keepdims=True)
        self.dinputs = np.dot(dvalues, self.weights.T)

class Activation_ReLU:
    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)
    def backward(self, dvalues):
        self.dinputs = dvalues.copy()
        self.dinputs[self.inputs <= 0] = 0

class Loss_MSE:
    def forward(self, y_pred, y_true):
        return np.mean((y_true - y_pred) ** 2, axis=-1)
    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        outputs = len(dvalues[0])
        self.dinputs = -2 * (y_true - dvalues) / outputs
        self.dinputs = self.dinputs / samples

def layer_objects(W1, b1, W2, b2, X, y):
    dense1 = Layer_Dense(W1, b1)
    activation1 = Activation_ReLU()
    dense2 = Layer_Dense(W2, b2)
    loss_function = Loss_MSE()
    dense1.forward(X)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    loss = np.mean(loss_function.forward(dense2.output, y))
    loss_function.backward(dense2.output, y)
    dense2.backward(loss_function.dinputs)
    activation1.backward(dense2.dinputs)
    dense1.backward(activation1.dinputs)
    return loss, dense1.dweights, dense1.dbiases, dense2.dweights, dense2.dbiases
