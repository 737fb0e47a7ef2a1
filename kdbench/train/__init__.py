"""The one training loop, its batches and augmentation, and how a batch is supervised (DS/LR).

Nothing here reads or writes a file: resume state goes through a checkpointer the caller passes.
"""
