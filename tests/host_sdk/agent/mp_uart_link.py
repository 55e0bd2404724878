# Runs a generated MicroPython agent for a UART board (nucleo-f446re, nrf52840-dk) on the
# MicroPython unix port, with a TCP connection to `shoal gateway --serial-listen` standing in
# for the board's wire (as QEMU's `-serial tcp:` does for the C agents): only the
# `machine.UART(...)` construction in shoal_agent.open_uart is replaced; everything else
# (shoal_config.py, open_link, PolledUart, UartTransport with the shared-console flush,
# framing.py, the session) is the generated project's own. Console lines after the link opens
# also go on the wire, as on a board whose REPL shares the link UART.
# Usage: micropython mp_uart_link.py HOST PORT PROJECT/main.py
# MicroPython code (no contextlib, %-formatting): ruff's SIM/UP rules do not apply.
# ruff: noqa: SIM105, SIM115, UP031
import select
import socket
import sys

import shoal_agent

HOST, PORT, MAIN = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class SocketUart:
    """The machine.UART calls PolledUart makes: any(), read(n), write(data)."""

    def __init__(self):
        sock = socket.socket()
        sock.connect(socket.getaddrinfo(HOST, PORT)[0][-1])
        sock.setblocking(False)
        self.sock = sock
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)

    def any(self):
        return 512 if self.poller.poll(0) else 0

    def read(self, size):
        try:
            data = self.sock.recv(size)
        except OSError:
            return None
        if not data:
            raise OSError("the gateway closed the serial link")
        return data

    def write(self, data):
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            try:
                sent += self.sock.send(view[sent:])
            except OSError:
                pass  # EAGAIN: the gateway reads soon
        return sent


wire = []


def open_uart(site):
    uart = SocketUart()
    wire.append(uart)
    print(
        "UART_SETTINGS id=%r baud=%d shared=%r"
        % (site.UART_ID, site.BAUDRATE, site.SHARED_WITH_CONSOLE)
    )
    return uart


console = shoal_agent.say


def say(line):
    console(line)
    if wire:
        wire[0].write((line + "\r\n").encode())


shoal_agent.open_uart = open_uart
shoal_agent.say = say
exec(open(MAIN).read())
