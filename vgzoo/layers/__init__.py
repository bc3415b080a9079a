"""Reusable blocks shared by the model families (and by plugins: import them from here).

Importing this package imports torch, but no model module.
"""

from .attention import Attention, attention_math, attention_sdpa, set_fused_attention
from .drop import DropPath, drop_path
from .init import init_normal_
from .label_map import LabelMap, label_values_checked, validate_labels
from .mlp import Mlp
from .norm import check_norm, get_norm_layer, is_per_sample, norm_uses_bias
from .padding import ReflectionPad2d, ReplicationPad2d
from .patch_embed import PatchEmbed, to_2tuple
from .patchgan import PatchDiscriminator
from .pos_embed import infer_grid_size, resample_abs_pos_embed
from .resnet_generator import ResnetBlock, ResnetGenerator
from .run_cache import derived, weights_fixed
from .unet import UnetGenerator, UnetSkipBlock, check_input_size

__all__ = [
    "Attention",
    "attention_math",
    "attention_sdpa",
    "set_fused_attention",
    "DropPath",
    "drop_path",
    "init_normal_",
    "LabelMap",
    "validate_labels",
    "label_values_checked",
    "Mlp",
    "check_norm",
    "get_norm_layer",
    "is_per_sample",
    "norm_uses_bias",
    "PatchEmbed",
    "to_2tuple",
    "PatchDiscriminator",
    "ReflectionPad2d",
    "ReplicationPad2d",
    "infer_grid_size",
    "resample_abs_pos_embed",
    "ResnetBlock",
    "ResnetGenerator",
    "derived",
    "weights_fixed",
    "UnetGenerator",
    "UnetSkipBlock",
    "check_input_size",
]
