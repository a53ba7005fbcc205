"""Models: heads and the architectures of notes 003, section 3."""

from jaxrnn.models.decoder import Decoder
from jaxrnn.models.generative import EncoderDecoder, OneToMany, state_with_h
from jaxrnn.models.head import Head
from jaxrnn.models.sequence import ManyToMany, ManyToOne

__all__ = ["Decoder", "EncoderDecoder", "Head", "ManyToMany", "ManyToOne", "OneToMany", "state_with_h"]
