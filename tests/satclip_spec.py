"""Facts about other tools' checkpoint readers that tests check exports against.

Written from the spec (``shared/spec/satclip.md``, sections 4 and 5), not
from the package, so that a wrong key in the package's export fails a test.
"""

#: What RANGE's location-only loader reads from ``hyper_parameters``.
RANGE_KEYS = (
    'le_type',
    'legendre_polys',
    'harmonics_calculation',
    'min_radius',
    'max_radius',
    'frequency_num',
    'pe_type',
    'embed_dim',
    'capacity',
    'num_hidden_layers',
)
#: What the official loader pops before building the model.
OFFICIAL_POPPED = ('eval_downstream', 'air_temp_data_path', 'election_data_path')
#: The official SatCLIPLightningModule's constructor arguments (spec section 4).
OFFICIAL_ARGUMENTS = {
    'embed_dim',
    'image_resolution',
    'vision_layers',
    'vision_width',
    'vision_patch_size',
    'in_channels',
    'le_type',
    'pe_type',
    'frequency_num',
    'max_radius',
    'min_radius',
    'legendre_polys',
    'harmonics_calculation',
    'sh_embedding_dims',
    'learning_rate',
    'weight_decay',
    'num_hidden_layers',
    'capacity',
}
