"""``python -m fastgd demo`` (also the ``fastgd`` console script)."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastgd", description="fastgd command line")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="softmax regression on the digits by BGD, SGD and MBGD")
    demo.add_argument("--backend", default="auto", help="auto, numpy, cython, numba or cuda")
    demo.add_argument("--epochs", type=int, default=None, help="epochs per method (default 30)")
    sub.add_parser("backends", help="list the backends that work here")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import EPOCHS, main as run_demo

        run_demo(backend=args.backend, epochs=args.epochs or EPOCHS)
        return 0
    if args.command == "backends":
        from .backends import available_backends

        print(" ".join(available_backends()))
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
