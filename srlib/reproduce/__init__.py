"""``srlib reproduce``: chapter 5 once per category, over several devices; then chapter 6 and the tables.

Every category is one papermill execution of ``notebooks/05_training_on_mvtec.ipynb``
in a process of its own (one worker per device, ``CUDA_VISIBLE_DEVICES``
set per worker), writing into ``OUT/<dataset>/<category>/``:

``05_training_on_mvtec.ipynb``
    the executed chapter, kept;
``05_training_on_mvtec.config.json``
    what it ran: the training and evaluation configurations (``TrainConfig``,
    ``EvalConfig``) as JSON, handed to the chapter as its ``config_file``;
``05_training_on_mvtec.parameters.json``, ``05_training_on_mvtec.log``
    the parameters it ran with and everything it printed;
``train/``
    the training run (``checkpoint.pt``, ``model.pt``, ``config.json``, ``log.jsonl``);
``result.json``
    the evaluation at (k, N), the file the tables read, written last;
``n_draws_1/result.json``... , ``k_sweep.csv``, ``gallery.npz``, ``overlays/``
    the N ablation, the k sweep and the figures' data;
``failed.txt``
    only after a failure: the error, the cell and where the log is.

``<dataset>`` is ``mvtec``, ``btad`` or ``mpdd``, or ``textures`` for the
bundled data (so it is never filed as MVTec AD). A category whose
``result.json`` was made with the same configuration (training settings
without the runtime ones, the evaluation settings, or the same released checkpoint) is skipped;
a re-run after a crash or a kill therefore redoes only the unfinished ones,
and an interrupted training resumes from its last checkpoint. Then the
tables go to ``OUT/tables/`` (Markdown and CSV) and chapter 6 is executed
into ``OUT/06_results.ipynb``.

Modules: :mod:`.folders` (one category's folder and released checkpoints),
:mod:`.category` (one category's steps, as chapter 5 takes them), :mod:`.plan` (the jobs), :mod:`.supervise` (child processes, stop and resume),
:mod:`.pipeline` (the command's steps); the arguments are in :mod:`srlib.cli.reproduce`.
"""
