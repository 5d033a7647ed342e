/* make_unix_socket PATH: leaves a UNIX socket file at PATH, standing in for an
 * RxDM socket in tcpx-doctor tests. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2 || strlen(argv[1]) >= sizeof(((struct sockaddr_un*)0)->sun_path)) {
    fprintf(stderr, "usage: make_unix_socket PATH (shorter than 108 bytes)\n");
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, argv[1]);
  if (fd < 0 || bind(fd, (struct sockaddr*)&a, sizeof(a)) != 0) {
    perror("make_unix_socket");
    return 1;
  }
  close(fd);
  return 0;
}
