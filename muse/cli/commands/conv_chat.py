"""`muse conv chat`: an interactive shopping conversation against a running server's Converse.

Each line you type is one user turn. Commands inside the conversation:

    /image PATH   attach a picture (PNG or JPEG file) to your next turn
    /like ID      refer to a catalogue item's picture in your next turn ("like this one")
    /new          start a new conversation (a new session id)
    /quit         leave (so does end of input)

Lines can also come from a pipe: ``printf 'a leather bag\\n' | muse conv chat``.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import TextIO

HELP = "type what you are looking for; /image PATH, /like ID, /new, /quit"


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default="127.0.0.1:50051", help="server address HOST:PORT")
    parser.add_argument("-k", type=int, default=5, help="items per answer (default: %(default)s)")
    parser.add_argument("--user", type=int, default=0, help="user id (routes the experiments)")
    parser.add_argument("--session", help="session id to continue (default: a new one)")
    parser.add_argument("--timeout", type=float, default=60.0, help="deadline per turn, seconds")


class Chat:
    """One terminal conversation: reads turns, sends Converse, prints answers."""

    def __init__(self, args: argparse.Namespace, output: TextIO) -> None:
        import grpc

        from serving.proto_gen.muse.serving.v1 import conversational_pb2_grpc

        self.args = args
        self.output = output
        self.channel = grpc.insecure_channel(args.address)
        self.stub = conversational_pb2_grpc.ConversationalServiceStub(self.channel)
        self.session = args.session or uuid.uuid4().hex
        self.image = b""
        self.image_item_id = 0

    def say(self, text: str) -> None:
        print(text, file=self.output, flush=True)

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the conversation should end."""
        line = line.strip()
        if not line:
            return True
        word, _, rest = line.partition(" ")
        if word == "/quit":
            return False
        if word == "/new":
            self.session = uuid.uuid4().hex
            self.say(f"(new conversation {self.session[:8]})")
            return True
        if word == "/image":
            path = Path(rest.strip()).expanduser()
            if not path.is_file():
                self.say(f"(no file {path})")
                return True
            self.image, self.image_item_id = path.read_bytes(), 0
            self.say(f"(picture {path.name} goes with your next turn)")
            return True
        if word == "/like":
            try:
                self.image_item_id, self.image = int(rest.strip()), b""
            except ValueError:
                self.say("(/like needs a catalogue item id)")
                return True
            self.say(f"(item {self.image_item_id}'s picture goes with your next turn)")
            return True
        if word.startswith("/"):
            self.say(f"(unknown command {word}; {HELP})")
            return True
        self.turn(line)
        return True

    def turn(self, text: str) -> None:
        import grpc

        from serving.proto_gen.muse.serving.v1 import conversational_pb2

        request = conversational_pb2.ConverseRequest(
            session_id=self.session,
            text=text,
            image=self.image,
            image_item_id=self.image_item_id,
            k=self.args.k,
            user_id=self.args.user,
        )
        self.image, self.image_item_id = b"", 0
        try:
            reply = self.stub.Converse(request, timeout=self.args.timeout)
        except grpc.RpcError as error:
            self.say(f"(server: {error.code().name}: {error.details()})")
            return
        picture = (
            f" + picture of item {reply.query_image_item_id}" if reply.query_image_item_id else ""
        )
        self.say(f"  query: {reply.rewritten_query!r}{picture}")
        for rank, item in enumerate(reply.items, start=1):
            self.say(f"  {rank}. {item.title} (item {item.item_id}, score {item.score:.3f})")
        if reply.items:
            self.say(f"assistant: How about the {reply.items[0].title}?")
        else:
            self.say("assistant: I found nothing for that; could you say more?")


def run(args: argparse.Namespace) -> int:
    from muse.core.errors import ConfigError

    if args.k < 1:
        raise ConfigError(f"-k must be ≥ 1, got {args.k}")
    chat = Chat(args, sys.stdout)
    interactive = sys.stdin.isatty()
    if interactive:
        chat.say(f"muse conversation {chat.session[:8]} at {args.address}: {HELP}")
    try:
        while True:
            if interactive:
                print("you: ", end="", flush=True)
            line = sys.stdin.readline()
            if not line or not chat.handle(line):
                break
    except KeyboardInterrupt:
        pass
    finally:
        chat.channel.close()
    return 0
