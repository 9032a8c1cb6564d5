"""``python -m fastgd demo`` (also the ``fastgd`` console script)."""
import argparse
import sys


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: it must be an integer >= 1")
    return value


def main(argv=None):
    from .backends import BACKENDS

    parser = argparse.ArgumentParser(prog="fastgd", description="fastgd command line")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="softmax regression on the digits by BGD, SGD and MBGD")
    demo.add_argument("--backend", default="auto", choices=("auto",) + tuple(BACKENDS),
                      help="the backend (default auto)")
    demo.add_argument("--epochs", type=_positive_int, default=None,
                      help="epochs per method (default 30)")
    sub.add_parser("backends", help="list the backends that work here")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import EPOCHS, main as run_demo

        try:
            run_demo(backend=args.backend, epochs=EPOCHS if args.epochs is None else args.epochs)
        except (ValueError, RuntimeError, ImportError) as exc:  # e.g. a backend not usable here
            demo.error(str(exc))
        return 0
    if args.command == "backends":
        from .backends import available_backends

        print(" ".join(available_backends()))
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
