"""Models: plain ``nn.Module`` s for regression (``mlp.MLP``) and image classification.

The image classifiers are built by name through the registry (``get``, ``names``, ``describe``,
``from_config``); each records its constructor arguments in ``model.config``. Your own network
plugs in as ``package.module:factory`` (``user_factory.UserModel``).
"""

from uqbench.models.bottleneck_resnet import BottleneckResNet
from uqbench.models.fast_cifar import FastCifarNet
from uqbench.models.lenet import LeNet5
from uqbench.models.mlp_classifier import MLPClassifier
from uqbench.models.registry import (
    check_name,
    describe,
    from_config,
    get,
    names,
    register_model_class,
)
from uqbench.models.resnet import ResNet
from uqbench.models.user_factory import UserModel
from uqbench.models.wide_resnet import WideResNet

__all__ = [
    "BottleneckResNet",
    "FastCifarNet",
    "LeNet5",
    "MLPClassifier",
    "ResNet",
    "UserModel",
    "WideResNet",
    "check_name",
    "describe",
    "from_config",
    "get",
    "names",
    "register_model_class",
]
