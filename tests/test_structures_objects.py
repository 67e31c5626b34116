"""Objects (issue 15 item 3): grad of a bound method (self bound, its attributes read as constants), functools.partial,
attribute reads on arguments (a dataclass, a namedtuple, an object: constants), the instance as the differentiated
argument when it is a dataclass; methods calling methods through Python's method resolution order (super() too),
properties, static and class methods, class constants, grad of a callable instance — each inlined with ``self``
known, and guarded: rebinding a method or constant on the class, or a method on the instance, generates again. What
is not supported is refused naming the user's line or the leaf's path."""

import dataclasses
import functools
from collections import namedtuple

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad, numerical_grad


class Model:
    def __init__(self, W, scale=2.0):
        self.W = W
        self.scale = scale

    def loss(self, x):
        return np.sum(np.tanh(x @ self.W)) * self.scale

    def forward(self, x):
        return x @ self.W

    def calls_a_method(self, x):
        return np.sum(self.forward(x))


@dataclasses.dataclass
class Params:
    W: np.ndarray
    b: float

    def loss(self, x):
        return np.sum((x @ self.W + self.b) ** 2)


@dataclasses.dataclass
class Config:
    scale: float
    steps: int


Options = namedtuple("Options", "power offset")


def repeated(x, cfg):
    s = 0.0
    for _ in range(cfg.steps):
        s = s + x * cfg.scale
    return s


def powered(x, opts):
    return np.sum(x ** opts.power) + opts.offset


def weighted(a, x, k=1.0):
    return np.sum(a * np.sin(x)) * k


def test_bound_method(rng):
    m = Model(rng.normal(size=(3, 2)))
    x = rng.normal(size=3)
    g = srcgrad.grad(m.loss)
    np.testing.assert_allclose(g(x), numerical_grad(m.loss, (x,), 0), rtol=1e-6)
    m.scale = 3.0  # attributes are read at each call
    np.testing.assert_allclose(g(x), numerical_grad(m.loss, (x,), 0), rtol=1e-6)
    value, gx = srcgrad.value_and_grad(m.loss)(x)
    assert value == pytest.approx(m.loss(x))
    assert "self.W" in srcgrad.source(g) and "self_W" in srcgrad.source(g)


def test_instance_as_the_differentiated_argument(rng):
    p = Params(rng.normal(size=(3, 2)), 0.5)
    check_grad(Params.loss, p, rng.normal(size=(4, 3)))
    g = srcgrad.grad(Params.loss)(p, rng.normal(size=(4, 3)))
    assert type(g) is Params
    # bound: self is a constant, the gradient is with respect to x
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(srcgrad.grad(p.loss)(x), numerical_grad(p.loss, (x,), 0), rtol=1e-6)


def test_partial(rng):
    a, x = rng.normal(size=3), rng.normal(size=3)
    g = srcgrad.grad(functools.partial(weighted, a, k=2.0))
    np.testing.assert_allclose(g(x), numerical_grad(lambda v: weighted(a, v, 2.0), (x,), 0), rtol=1e-6)
    ga = srcgrad.grad(functools.partial(weighted, k=0.5), wrt="a")
    np.testing.assert_allclose(ga(a, x), 0.5 * np.sin(x))


def test_attributes_of_arguments(rng):
    for steps in (3, 4):
        assert srcgrad.grad(repeated)(1.0, Config(0.5, steps)) == pytest.approx(0.5 * steps)
    x = rng.uniform(0.5, 1.5, size=3)
    check_grad(powered, x, Options(3.0, 1.0))


def test_not_supported_is_refused(rng):
    m = Model(np.ones((3, 2)))
    with pytest.raises(srcgrad.InvalidArgument, match=r"`self`: got Model"):
        srcgrad.grad(Model.loss)(m, np.ones(3))
    with pytest.raises(srcgrad.InvalidArgument, match="not a parameter the caller passes"):
        srcgrad.grad(m.loss, wrt="self")


class Base:
    offset = 0.5

    def __init__(self, W, scale=2.0):
        self.W = W
        self.scale = scale

    def forward(self, x):
        return np.tanh(x @ self.W)

    @property
    def doubled(self):
        return self.scale * 2.0

    @staticmethod
    def squared(v):
        return v * v

    @classmethod
    def shifted(cls, v):
        return v + cls.offset

    def loss(self, x):
        return np.sum(self.squared(self.forward(x))) * self.doubled + self.shifted(0.0)

    def __call__(self, x):
        return self.loss(x)


class Child(Base):
    def forward(self, x):
        return super().forward(x) * 3.0


class Counting(Base):
    @property
    def doubled(self):
        self.calls = 1  # (a property that changes the object)
        return 2.0


def other_forward(self, x):
    return np.cos(x @ self.W)


@dataclasses.dataclass
class Line:
    w: float
    b: float

    @property
    def slope(self):
        return self.w * 2.0 + self.b

    def predict(self, x):
        return self.slope * x

    def loss(self, x):
        return self.predict(x) ** 2


def agrees(f, x):
    return np.allclose(srcgrad.grad(f)(x), numerical_grad(f, (x,), 0), rtol=1e-6)


@pytest.mark.parametrize("cls", [Base, Child])
def test_methods_properties_static_and_class_methods(cls, rng):
    m = cls(rng.normal(size=(3, 2)))
    x = rng.normal(size=3)
    assert agrees(m.loss, x)
    assert agrees(m, x)  # grad(instance): its __call__
    value, _ = srcgrad.value_and_grad(m)(x)
    assert value == pytest.approx(m(x))


def test_calling_methods_of_a_dataclass_argument():
    check_grad(Line.loss, Line(0.5, 0.2), 1.3)  # the dataclass differentiated: a Line comes back
    check_grad(Line.loss, Line(0.5, 0.2), 1.3, wrt=1)
    g = srcgrad.grad(Line.loss)(Line(0.5, 0.2), 1.3)
    assert type(g) is Line


def test_static_and_class_methods_differentiated_directly():
    assert srcgrad.grad(Base.squared)(0.7) == pytest.approx(1.4)
    assert srcgrad.grad(Base.shifted)(0.7) == pytest.approx(1.0)


def test_rebinding_generates_again(rng, monkeypatch):
    m = Child(rng.normal(size=(3, 2)))
    x = rng.normal(size=3)
    g = srcgrad.grad(m.loss)
    assert np.allclose(g(x), numerical_grad(m.loss, (x,), 0), rtol=1e-6)
    monkeypatch.setattr(Child, "forward", other_forward)  # on the class
    assert np.allclose(g(x), numerical_grad(m.loss, (x,), 0), rtol=1e-6)
    monkeypatch.setattr(Base, "offset", 10.0)  # a class constant
    assert np.allclose(g(x), numerical_grad(m.loss, (x,), 0), rtol=1e-6)
    assert srcgrad.value_and_grad(m.loss)(x)[0] == pytest.approx(m.loss(x))
    m.scale = 5.0  # an instance attribute: read at each call
    assert np.allclose(g(x), numerical_grad(m.loss, (x,), 0), rtol=1e-6)
    m.forward = lambda v: v  # a method rebound on the instance: another structure, refused
    with pytest.raises(srcgrad.SrcgradError, match="only named functions can be called"):
        g(x)


def test_a_property_that_changes_the_object_is_refused(rng):
    m = Counting(rng.normal(size=(3, 2)))
    with pytest.raises(srcgrad.UnsupportedSyntax, match="writes into a structured parameter"):
        srcgrad.grad(m.loss)(rng.normal(size=3))
