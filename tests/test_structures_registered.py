"""Classes registered with srcgrad.register_structure (issue 15 item 3): instances are structures — the gradient comes
back as the same class rebuilt by unflatten, checked leaf by leaf against central differences; attribute reads of
named children, methods and properties resolve to the children; another aux or other children is another variant;
flatten breaking its contract, unhashable aux data, unregistered objects and attribute reads srcgrad cannot map are
refused with the leaf path or the user's line."""

import dataclasses

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import InvalidArgument, UnsupportedSyntax
from srcgrad.testing import check_grad


class Layer:
    """A plain class: its weights are named children, its activation is aux data."""

    def __init__(self, W, b, activation="tanh"):
        self.W, self.b, self.activation = W, b, activation

    def forward(self, x):
        return np.tanh(x @ self.W + self.b)

    @property
    def size(self):
        return np.sum(self.W ** 2)


def flatten_layer(layer):
    return {"W": layer.W, "b": layer.b}, layer.activation


def unflatten_layer(activation, children):
    return Layer(children["W"], children["b"], activation)


srcgrad.register_structure(Layer, flatten_layer, unflatten_layer)


class Scaled(Layer):
    """A subclass registered on its own, with a float child and a method that calls the base class's."""

    def __init__(self, W, b, gain):
        super().__init__(W, b)
        self.gain = gain

    def forward(self, x):
        return super().forward(x) * self.gain


srcgrad.register_structure(Scaled, lambda s: ({"W": s.W, "b": s.b, "gain": s.gain}, None),
                           lambda aux, c: Scaled(c["W"], c["b"], c["gain"]))


class Pair:
    """Children as a sequence: an attribute holding a child's very object is that child."""

    def __init__(self, a, b):
        self.a, self.b = a, b


srcgrad.register_structure(Pair, lambda p: ((p.a, p.b), "pair"), lambda aux, c: Pair(*c))


@dataclasses.dataclass(frozen=True)
class Config:
    steps: int
    name: str


class Configured:
    """Aux data that is a frozen dataclass (hashable, compared by value)."""

    def __init__(self, w, config):
        self.w, self.config = w, config


srcgrad.register_structure(Configured, lambda o: ({"w": o.w}, o.config), lambda cfg, c: Configured(c["w"], cfg))


class Renamed:
    """flatten names a child otherwise than the attribute that holds it."""

    def __init__(self, w):
        self.w = w


srcgrad.register_structure(Renamed, lambda o: ({"weight": o.w}, None), lambda aux, c: Renamed(c["weight"]))


class Derived:
    """flatten returns values computed from the attributes: no attribute is a child."""

    def __init__(self, w, scale):
        self.w, self.scale = w, scale


srcgrad.register_structure(Derived, lambda o: ([o.w * 1.0, o.scale], None), lambda aux, c: Derived(*c))


class Named:
    """A dict child named like an attribute, but another value."""

    def __init__(self, w):
        self.w = w


srcgrad.register_structure(Named, lambda o: ({"w": o.w + 0.0}, None), lambda aux, c: Named(c["w"]))


def layer_loss(layer, x):
    return np.sum(layer.forward(x) ** 2) + 0.5 * layer.size


def model_loss(params, x):
    for layer in params["layers"]:
        x = layer.forward(x)
    return np.sum(x ** 2) * params["scale"]


def configured_loss(c, x):
    total = 0.0
    for _ in range(c.config.steps):
        total = total + np.sum(np.sin(c.w * x))
    return total


def pair_sum(p):
    return 1.0


def pair_attribute(p):
    return np.sum(p.a ** 2)


def renamed_loss(r):
    return np.sum(r.w ** 2)


def reads_aux(layer, x):
    return np.sum(layer.forward(x)) * len(layer.activation)


@pytest.fixture
def layer(rng):
    return Layer(rng.normal(size=(3, 2)), rng.normal(size=2))


def test_gradient_is_the_class_rebuilt(layer, rng):
    x = rng.normal(size=(4, 3))
    g = srcgrad.grad(layer_loss)(layer, x)
    assert type(g) is Layer and g.activation == "tanh"
    assert g.W.shape == layer.W.shape and g.b.shape == layer.b.shape
    check_grad(layer_loss, layer, x)  # leaf by leaf against central differences, structure exactly


def test_nested_in_dicts_and_lists_with_inheritance(layer, rng):
    x = rng.normal(size=(4, 3))
    params = {"layers": [layer, Scaled(rng.normal(size=(2, 2)), rng.normal(size=2), 1.5)], "scale": 0.7}
    g = srcgrad.grad(model_loss)(params, x)
    assert list(g) == ["layers", "scale"] and [type(v) for v in g["layers"]] == [Layer, Scaled]
    assert isinstance(g["layers"][1].gain, float)
    check_grad(model_loss, params, x)


def test_registered_inside_a_dataclass(layer, rng):
    @dataclasses.dataclass
    class Holder:
        inner: Layer
        bias: float

    def loss(h, x):
        return layer_loss(h.inner, x) + h.bias ** 2

    check_grad(loss, Holder(layer, 0.3), rng.normal(size=(4, 3)))


def test_frozen_aux_data_and_variants(rng):
    x = rng.normal(size=3)
    w = rng.normal(size=3)
    grad = srcgrad.grad(configured_loss)
    two, three = Configured(w, Config(2, "a")), Configured(w, Config(3, "a"))
    g2, g3 = grad(two, x), grad(three, x)
    assert g2.config == Config(2, "a") and g3.config == Config(3, "a")  # each rebuilt with its own aux
    np.testing.assert_allclose(g3.w, 1.5 * g2.w, rtol=1e-12)  # another aux data: another variant
    np.testing.assert_allclose(grad(Configured(w, Config(2, "a")), x).w, g2.w)  # an equal one: the same
    check_grad(configured_loss, three, x)


def test_aux_decides_the_variant(layer, rng):
    x = rng.normal(size=(4, 3))
    grad = srcgrad.grad(reads_aux)
    g4 = grad(layer, x)
    g7 = grad(Layer(layer.W, layer.b, "sigmoid"), x)
    assert g7.activation == "sigmoid" and g4.activation == "tanh"
    np.testing.assert_allclose(g7.W, 7 / 4 * g4.W, rtol=1e-12)
    again = grad(Layer(layer.W, layer.b, "sigmoid"), x)  # (the call-time check of the last variant holds)
    assert again.activation == "sigmoid"
    np.testing.assert_allclose(again.W, g7.W)
    wider = Layer(np.ones((3, 5)), np.ones(5), "sigmoid")  # other child shapes: the check fails, a new kind
    assert grad(wider, x).W.shape == (3, 5)
    check_grad(reads_aux, wider, x)


def test_sequence_children(rng):
    a, b = rng.normal(size=2), rng.normal(size=3)
    g = srcgrad.grad(pair_sum)(Pair(a, b))
    assert type(g) is Pair and np.all(g.a == 0) and g.b.shape == (3,)
    g = srcgrad.grad(pair_attribute)(Pair(a, b))  # p.a holds the first child itself
    np.testing.assert_allclose(g.a, 2 * a) and np.testing.assert_allclose(g.b, 0.0)
    check_grad(pair_attribute, Pair(a, b))
    check_grad(renamed_loss, Renamed(a))  # r.w holds the child flatten names "weight"


def derived_loss(d):
    return np.sum(d.w ** 2) * d.scale


def test_attribute_reads_srcgrad_cannot_map_are_refused(layer, rng):
    """A child computed by flatten is not what the attribute holds: reading the attribute as the child would give
    a wrong gradient, reading it as a constant too — refused at the user's line."""
    with pytest.raises(UnsupportedSyntax, match="returns its children as a sequence, and the attribute") as info:
        srcgrad.grad(derived_loss)(Derived(rng.normal(size=2), 2.0))
    assert "test_structures_registered.py" in str(info.value) and "dict of named children" in info.value.hint
    with pytest.raises(UnsupportedSyntax, match="names a child `w` that is not the attribute `w`"):
        srcgrad.grad(renamed_loss)(Named(rng.normal(size=2)))

    def reads_other(layer):
        return np.sum(layer.W) * layer.extra

    layer.extra = 2.0
    with pytest.raises(AttributeError, match=r"`layer.extra` is not a child of the registered Layer"):
        srcgrad.grad(reads_other)(layer)


def test_jvp_hvp_hessian_jacobian(layer, rng):
    x = rng.normal(size=(4, 3))
    t = Layer(rng.normal(size=(3, 2)), rng.normal(size=2))
    value, tangent = srcgrad.jvp(layer_loss)(layer, x, t)
    g = srcgrad.grad(layer_loss)(layer, x)
    assert value == pytest.approx(layer_loss(layer, x))
    assert tangent == pytest.approx(np.sum(g.W * t.W) + np.sum(g.b * t.b))
    hv = srcgrad.hvp(layer_loss)(layer, x, t)
    assert type(hv) is Layer
    eps = 1e-6
    plus = srcgrad.grad(layer_loss)(Layer(layer.W + eps * t.W, layer.b + eps * t.b), x)
    minus = srcgrad.grad(layer_loss)(Layer(layer.W - eps * t.W, layer.b - eps * t.b), x)
    np.testing.assert_allclose(hv.W, (plus.W - minus.W) / (2 * eps), rtol=1e-5, atol=1e-7)
    h = srcgrad.hessian(layer_loss)(layer, x)
    assert type(h) is Layer and type(h.W) is Layer and h.W.b.shape == (3, 2, 2)
    jac = srcgrad.jacobian(lambda_free_forward)(layer, x)
    assert type(jac) is Layer and jac.W.shape == (4, 2, 3, 2)


def lambda_free_forward(layer, x):
    return layer.forward(x)


def test_flatten_breaking_its_contract(rng):
    class NoPair:
        def __init__(self, w):
            self.w = w

    class Unhashable:
        def __init__(self, w):
            self.w = w

    class Children:
        def __init__(self, w):
            self.w = w

    srcgrad.register_structure(NoPair, lambda o: [o.w], lambda aux, c: NoPair(c[0]))
    srcgrad.register_structure(Unhashable, lambda o: ({"w": o.w}, [1, 2]), lambda aux, c: Unhashable(c["w"]))
    srcgrad.register_structure(Children, lambda o: ({o.w.size, 1}, None), lambda aux, c: Children(c))
    w = rng.normal(size=2)
    with pytest.raises(InvalidArgument, match=r"p\['a'\]\[0\]: flatten of .*NoPair returned list, not a pair"):
        srcgrad.grad(pair_sum)({"a": [NoPair(w)]})
    with pytest.raises(InvalidArgument, match=r"p: flatten of .*Unhashable returned aux data that is not hashable"):
        srcgrad.grad(pair_sum)(Unhashable(w))
    with pytest.raises(InvalidArgument, match="returned children of type set"):
        srcgrad.grad(pair_sum)(Children(w))


def test_registration_errors():
    with pytest.raises(InvalidArgument, match="already registered"):
        srcgrad.register_structure(Layer, flatten_layer, lambda aux, c: None)
    assert srcgrad.register_structure(Layer, flatten_layer, unflatten_layer) is Layer  # the same: nothing changes
    with pytest.raises(InvalidArgument, match="builtin"):
        srcgrad.register_structure(dict, flatten_layer, unflatten_layer)
    with pytest.raises(InvalidArgument, match="takes a class"):
        srcgrad.register_structure(Layer(1.0, 2.0), flatten_layer, unflatten_layer)
    with pytest.raises(InvalidArgument, match="two functions"):
        srcgrad.register_structure(Config, None, unflatten_layer)


class Unregistered:
    def __init__(self, b):
        self.b = b


def test_unregistered_object_names_the_leaf_path(rng):
    params = {"layers": [rng.normal(size=2), 1.0, Unregistered("x")]}
    with pytest.raises(InvalidArgument, match=r"params\['layers'\]\[2\]: got Unregistered") as info:
        srcgrad.grad(model_loss)(params, 1.0)
    assert "register_structure" in info.value.hint


def test_a_constant_registered_object_is_read_as_an_object(layer, rng):
    """``self`` of a bound method, not differentiated: its attributes (children or not) are constants."""
    layer.offset = 0.5
    x = rng.normal(size=(4, 3))

    def loss(model, x):
        return np.sum(model.forward(x)) + model.offset

    g = srcgrad.grad(loss, wrt=1)(layer, x)
    check_grad(loss, layer, x, wrt=1)
    assert g.shape == x.shape
