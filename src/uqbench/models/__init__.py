"""Models: plain ``nn.Module`` s for regression (``mlp.MLP``), image and text classification.

The image classifiers are built by name through the registry (``get``, ``names``, ``describe``,
``from_config``); each records its constructor arguments in ``model.config``. Your own network
plugs in as ``package.module:factory`` (``user_factory.UserModel``). Text classifiers
(``TextCNN``, ``TextTransformer``, or your encoder as ``package.module:factory``) are built by
``get_text_model`` (``text_registry``).
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
from uqbench.models.text_registry import UserTextClassifier, check_text_model, get_text_model
from uqbench.models.text_transformer import TextTransformer
from uqbench.models.textcnn import TextCNN
from uqbench.models.user_factory import UserModel
from uqbench.models.wide_resnet import WideResNet

__all__ = [
    "BottleneckResNet",
    "FastCifarNet",
    "LeNet5",
    "MLPClassifier",
    "ResNet",
    "TextCNN",
    "TextTransformer",
    "UserModel",
    "UserTextClassifier",
    "WideResNet",
    "check_name",
    "check_text_model",
    "describe",
    "from_config",
    "get",
    "get_text_model",
    "names",
    "register_model_class",
]
