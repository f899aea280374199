"""Model constructors referenced by configs/model/*.yaml (`net._target_`)."""
